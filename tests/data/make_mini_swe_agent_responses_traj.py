"""Writes minisweagent_responses.traj.json: a trajectory saved by mini-swe-agent itself
(2.4.6 made the file in tests/data) as it saves a Responses-API model's run (its
`litellm_response` / `openrouter_response` models: each model turn the API's whole response
object, each result a `function_call_output` item). Not run by the tests; to remake the file:

    python3 -m venv /tmp/msa && /tmp/msa/bin/pip install mini-swe-agent==2.4.6
    /tmp/msa/bin/python tests/data/make_mini_swe_agent_responses_traj.py tests/data/minisweagent_responses.traj.json

The model is mini-swe-agent's own scripted test model for that API; its outputs are given the
fields a real response carries (a reasoning item with a summary, `usage`) so the importer's
reading of them is checked. The agent really runs the three commands in a shell (the first
fails), then submits."""

import sys
from pathlib import Path

import yaml
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import __file__ as config_file
from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.test_models import DeterministicResponseAPIToolcallModel, make_response_api_output

commands = ["ls /nonexistent-dir", "echo hello", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && printf 'diff --git a/x b/x\\n'"]
outputs = []
for i, command in enumerate(commands):
    out = make_response_api_output(f"I will run {command.split()[0]}.", [{"command": command, "tool_call_id": f"call_{i}"}])
    out["output"].insert(0, {"type": "reasoning", "id": f"rs_{i}", "summary": [{"type": "summary_text", "text": f"step {i}"}]})
    out["usage"] = {"input_tokens": 1000 * (i + 1), "input_tokens_details": {"cached_tokens": 900 * i},
                    "output_tokens": 50 + i, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 1050 + 1001 * i}
    outputs.append(out)
agent_config = yaml.safe_load((Path(config_file).parent / "default.yaml").read_text())["agent"]
agent = DefaultAgent(DeterministicResponseAPIToolcallModel(outputs=outputs), LocalEnvironment(),
                     **{**agent_config, "output_path": Path(sys.argv[1])})
print(agent.run("Fix the bug"))
