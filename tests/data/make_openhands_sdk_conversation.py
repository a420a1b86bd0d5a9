"""Writes openhands_sdk_conversation/: a conversation folder persisted by the OpenHands
Software Agent SDK itself (1.58.2 made the one in tests/data) — base_state.json beside
events/, as `Conversation(persistence_dir=...)` leaves it. Not run by the tests; to remake it
(the SDK needs Python 3.12):

    python3.12 -m venv /tmp/oh && /tmp/oh/bin/pip install openhands-sdk==1.58.2 openhands-tools==1.58.2
    /tmp/oh/bin/python tests/data/make_openhands_sdk_conversation.py tests/data/openhands_sdk_conversation

The model's answers are scripted: the SDK's LLM runs as it would against OpenAI's gpt-4o
(litellm prices each response, the SDK records its tokens, cache reads, latency and cost),
only the HTTP call is replaced by one that returns the next answer with the usage a caching
provider reports. The agent's terminal and file editor really run, in a scratch copy of a
two-line repository: the agent reads calc.py, fixes it and checks it in one answer (two
parallel tool calls), calls a tool it does not have, lists a missing file (exit code 2),
then finishes."""

import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import openhands.sdk.llm.llm as sdk_llm
from litellm.types.utils import Choices, ModelResponse, PromptTokensDetailsWrapper, Usage
from litellm.types.utils import Message as LiteLLMMessage
from openhands.sdk import LLM, Agent, Conversation
from openhands.sdk.tool import Tool
from openhands.tools.file_editor import FileEditorTool
from openhands.tools.preset.default import register_default_tools
from openhands.tools.terminal import TerminalTool

out = Path(sys.argv[1])
work = Path(tempfile.mkdtemp(prefix="calc-repo-"))
(work / "calc.py").write_text("def add(a, b):\n    return a - b\n")

# (thought, [(tool, arguments)], (prompt tokens, completion tokens, of the prompt read from cache))
ANSWERS = [
    ("Look at the code first.", [("terminal", {"command": "cat calc.py"})], (1200, 40, 0)),
    ("", [("file_editor", {"command": "str_replace", "path": str(work / "calc.py"), "old_str": "a - b",
                           "new_str": "a + b"}),
          ("terminal", {"command": "python3 -c 'import calc; assert calc.add(2, 3) == 5'"})], (1400, 90, 1100)),
    ("Open it in a browser.", [("browser", {"url": "file://" + str(work)})], (1650, 25, 1300)),
    ("Check nothing else.", [("terminal", {"command": "ls nosuchfile"})], (1700, 30, 1600)),
    ("Fixed.", [("finish", {"message": "add() now adds."})], (1800, 20, 1600)),
]
answered = 0


def scripted_completion(**_request):
    global answered
    thought, calls, (prompt, completion, cached) = ANSWERS[answered]
    time.sleep(0.05 * (answered + 1))  # a latency the SDK measures
    tool_calls = [{"id": f"call_{answered}_{j}", "type": "function",
                   "function": {"name": name, "arguments": json.dumps(args)}} for j, (name, args) in enumerate(calls)]
    answered += 1
    return ModelResponse(
        id=f"chatcmpl-{answered - 1}", model="gpt-4o-2024-08-06", object="chat.completion", created=int(time.time()),
        choices=[Choices(index=0, finish_reason="tool_calls",
                         message=LiteLLMMessage(role="assistant", content=thought or None, tool_calls=tool_calls))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                    prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=cached)))


sdk_llm.litellm_completion = scripted_completion
register_default_tools(enable_browser=False)
llm = LLM(model="openai/gpt-4o-2024-08-06", api_key="sk-not-used", usage_id="agent", native_tool_calling=True)
agent = Agent(llm=llm, tools=[Tool(name=TerminalTool.name), Tool(name=FileEditorTool.name)])
shutil.rmtree(out, ignore_errors=True)
conversation = Conversation(agent=agent, workspace=str(work), persistence_dir=str(out), max_iteration_per_run=10,
                            conversation_id=uuid.UUID("5b275e58-615d-482e-87b8-00baf063b5cd"))
conversation.send_message("Fix add() in calc.py: it subtracts.")
conversation.run()
print(conversation.state.execution_status, (work / "calc.py").read_text(), sep="\n")
shutil.rmtree(work)
