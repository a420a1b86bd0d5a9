"""Write tests/data/inspect_epochs.eval with Inspect AI itself (0.3.285 made the stored one).

Six samples, four epochs each, scored by Inspect's ``match()``; sample sK is answered right in
the epochs RIGHT[sK] lists (no model: a solver writes the answer, the scorer and the epoch
reducers are Inspect's own). The log's results hold Inspect's scores under its ``mean``,
``pass_at_2``, ``pass_at_3`` and ``pass_at_4`` reducers: what seaview's pass@k must equal.

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
REDUCERS = ["mean", "pass_at_2", "pass_at_3", "pass_at_4"]


@solver
def answer_in_some_epochs():
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        right = state.epoch in RIGHT[str(state.sample_id)]
        state.output = ModelOutput.from_content("mockllm/model", state.target.text if right else "wrong")
        state.messages.append(state.output.message)
        return state

    return solve


@task
def epochs_task():
    return Task(dataset=[Sample(id=k, input=f"say {k}", target=f"ans-{k}") for k in RIGHT],
                solver=answer_in_some_epochs(), scorer=match(), epochs=Epochs(4, REDUCERS))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        log = eval(epochs_task(), model="mockllm/model", log_dir=tmp, display="none")[0]
        for s in log.results.scores:
            print(s.reducer, s.metrics["accuracy"].value)
        shutil.copy(log.location, Path(__file__).with_name("inspect_epochs.eval"))
