"""Writes swebench_5.0.2_report.json: a run report written by the SWE-bench harness itself
(swebench 5.0.2 made the one in tests/data). Not run by the tests; to remake it:

    python3 -m venv /tmp/sb && /tmp/sb/bin/pip install swebench==5.0.2
    cd "$(mktemp -d)" && /tmp/sb/bin/python /path/to/tests/data/make_swebench_report.py
    cp openai__gpt-4o.run1.json /path/to/tests/data/swebench_5.0.2_report.json

The harness's `make_run_report` reads the per-instance logs an evaluation leaves under
logs/run_evaluation/<run>/<model>/<instance>/; they are written here as the evaluation would
(report.json, test_output.txt), without Docker. Six instances: a resolved, b unresolved, c
unresolved with a Docker daemon error in its test output (the harness classifies it an
infrastructure failure, `container_unavailable`, and keeps it among the unresolved), d without
a report (an error; its test run timed out: `tests_timed_out`, ambiguous), e an empty patch,
f never submitted."""

import json

from swebench.harness.constants import LOG_REPORT, LOG_TEST_OUTPUT, RUN_EVALUATION_LOG_DIR
from swebench.harness.reporting import make_run_report

MODEL = "openai/gpt-4o"
IDS = ["a__a-1", "b__b-2", "c__c-3", "d__d-4", "e__e-5", "f__f-6"]
predictions = {i: {"instance_id": i, "model_name_or_path": MODEL,
                   "model_patch": "" if i == "e__e-5" else "diff --git a/x b/x\n"} for i in IDS[:-1]}


def evaluated(iid: str, resolved: bool | None, test_output: str) -> None:
    folder = RUN_EVALUATION_LOG_DIR / "run1" / MODEL.replace("/", "__") / iid
    folder.mkdir(parents=True, exist_ok=True)
    if resolved is not None:
        (folder / LOG_REPORT).write_text(json.dumps({iid: {"patch_is_None": False, "patch_exists": True,
                                                           "patch_successfully_applied": True, "resolved": resolved}}))
    (folder / LOG_TEST_OUTPUT).write_text(test_output)


evaluated("a__a-1", True, "collected 3 items\n3 passed")
evaluated("b__b-2", False, "collected 3 items\n1 failed")
evaluated("c__c-3", False, "Error response from daemon: No such container")
evaluated("d__d-4", None, "Timeout error: 1800 seconds exceeded")
print(make_run_report(predictions, [{"instance_id": i} for i in IDS], "run1"))
