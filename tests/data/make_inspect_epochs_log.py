"""Write tests/data/inspect_epochs.eval and inspect_epochs_errors.eval with Inspect AI itself
(0.3.285 made the stored ones).

Six samples, four epochs each, scored by Inspect's ``match()``; sample sK is answered right in
the epochs RIGHT[sK] lists (no model: a solver writes the answer, the scorer and the epoch
reducers are Inspect's own). In the second log the solver raises in the epochs FAIL lists
(run with ``fail_on_error=False``: those samples are errors, left out of Inspect's scores).
Each log's results hold Inspect's scores under its ``mean``, ``pass_at_2``, ``pass_at_3`` and
``pass_at_4`` reducers: what seaview's pass@k must equal.

    python -m venv /tmp/insp && /tmp/insp/bin/pip install inspect_ai
    /tmp/insp/bin/python tests/data/make_inspect_epochs_log.py
"""

import shutil
import tempfile
from pathlib import Path

from inspect_ai import Epochs, Task, eval, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput
from inspect_ai.scorer import match
from inspect_ai.solver import Generate, TaskState, solver

RIGHT = {"s1": {1, 2, 3, 4}, "s2": {1}, "s3": set(), "s4": {2, 4}, "s5": {3}, "s6": {1, 2, 3}}
FAIL = {("s2", 2), ("s4", 1), ("s6", 4)}
REDUCERS = ["mean", "pass_at_2", "pass_at_3", "pass_at_4"]


@solver
def answer_in_some_epochs(fail: bool):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if fail and (str(state.sample_id), state.epoch) in FAIL:
            raise RuntimeError("sandbox exploded")
        right = state.epoch in RIGHT[str(state.sample_id)]
        state.output = ModelOutput.from_content("mockllm/model", state.target.text if right else "wrong")
        state.messages.append(state.output.message)
        return state

    return solve


@task
def epochs_task(fail: bool = False):
    return Task(dataset=[Sample(id=k, input=f"say {k}", target=f"ans-{k}") for k in RIGHT],
                solver=answer_in_some_epochs(fail), scorer=match(), epochs=Epochs(4, REDUCERS))


if __name__ == "__main__":
    for fail, name in ((False, "inspect_epochs.eval"), (True, "inspect_epochs_errors.eval")):
        with tempfile.TemporaryDirectory() as tmp:
            log = eval(epochs_task(fail), model="mockllm/model", log_dir=tmp, display="none", fail_on_error=False)[0]
            print(name, [(s.reducer, s.metrics["accuracy"].value) for s in log.results.scores])
            shutil.copy(log.location, Path(__file__).with_name(name))
