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
two-line repository. Two conversations: in one the agent reads calc.py, fixes it and checks
it in one answer (two parallel tool calls), calls a tool it does not have, lists a missing
file (exit code 2), then finishes; in the other it runs six echoes with an LLM-summarizing
condenser (gpt-4o-mini, at most 8 events in view) that condenses the history as it grows."""

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
from openhands.sdk.context.condenser import LLMSummarizingCondenser
from openhands.sdk.tool import Tool
from openhands.tools.file_editor import FileEditorTool
from openhands.tools.preset.default import register_default_tools
from openhands.tools.terminal import TerminalTool

out = Path(sys.argv[1])
work = Path(tempfile.mkdtemp(prefix="calc-repo-"))
(work / "calc.py").write_text("def add(a, b):\n    return a - b\n")

# (thought, [(tool, arguments)], (prompt tokens, completion tokens, of the prompt read from cache))
FIX_CALC = [
    ("Look at the code first.", [("terminal", {"command": "cat calc.py"})], (1200, 40, 0)),
    ("", [("file_editor", {"command": "str_replace", "path": str(work / "calc.py"), "old_str": "a - b",
                           "new_str": "a + b"}),
          ("terminal", {"command": "python3 -c 'import calc; assert calc.add(2, 3) == 5'"})], (1400, 90, 1100)),
    ("Open it in a browser.", [("browser", {"url": "file://" + str(work)})], (1650, 25, 1300)),
    ("Check nothing else.", [("terminal", {"command": "ls nosuchfile"})], (1700, 30, 1600)),
    ("Fixed.", [("finish", {"message": "add() now adds."})], (1800, 20, 1600)),
]
# echo 0..5, then finish; the condenser (gpt-4o-mini) summarizes when the view passes 8 events
ECHOES = [(f"Echo {i}.", [("terminal", {"command": f"echo {i}"})], (1000 + 100 * i, 20, 500)) for i in range(6)]
ECHOES.append(("Done.", [("finish", {"message": "echoed 0 to 5"})], (1700, 20, 500)))
SUMMARY = ("USER_CONTEXT: echo 0 to 5, then finish. PROGRESS: the earlier echoes ran.", (3000, 120, 0))
answers: list = []
answered = 0


def scripted_completion(**request):
    """The next agent answer, or (a request without tools) the condenser's summary."""
    global answered
    if request.get("tools"):
        thought, calls, (prompt, completion, cached) = answers.pop(0)
        model = "gpt-4o-2024-08-06"
    else:
        (thought, (prompt, completion, cached)), calls = SUMMARY, []
        model = "gpt-4o-mini-2024-07-18"
    time.sleep(0.05 * (answered % 5 + 1))  # a latency the SDK measures
    tool_calls = [{"id": f"call_{answered}_{j}", "type": "function",
                   "function": {"name": name, "arguments": json.dumps(args)}} for j, (name, args) in enumerate(calls)]
    answered += 1
    return ModelResponse(
        id=f"chatcmpl-{answered - 1}", model=model, object="chat.completion", created=int(time.time()),
        choices=[Choices(index=0, finish_reason="tool_calls" if calls else "stop",
                         message=LiteLLMMessage(role="assistant", content=thought or None, tool_calls=tool_calls or None))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                    prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=cached)))


def converse(conversation_id: str, script: list, task: str, condenser=None) -> None:
    global answers, answered
    answers, answered = list(script), 0
    llm = LLM(model="openai/gpt-4o-2024-08-06", api_key="sk-not-used", usage_id="agent", native_tool_calling=True)
    agent = Agent(llm=llm, tools=[Tool(name=TerminalTool.name), Tool(name=FileEditorTool.name)], condenser=condenser)
    conversation = Conversation(agent=agent, workspace=str(work), persistence_dir=str(out), max_iteration_per_run=20,
                                conversation_id=uuid.UUID(conversation_id))
    conversation.send_message(task)
    conversation.run()
    print(conversation.state.execution_status)


sdk_llm.litellm_completion = scripted_completion
register_default_tools(enable_browser=False)
shutil.rmtree(out, ignore_errors=True)
converse("5b275e58-615d-482e-87b8-00baf063b5cd", FIX_CALC, "Fix add() in calc.py: it subtracts.")
print((work / "calc.py").read_text())
condenser = LLMSummarizingCondenser(llm=LLM(model="openai/gpt-4o-mini-2024-07-18", api_key="sk-not-used",
                                            usage_id="condenser"), max_size=8, keep_first=2)
converse("7a0c5c2e-1111-4b6e-9c11-2a9e0b7d3c55", ECHOES, "Run echo 0 to 5, then finish.", condenser)
shutil.rmtree(work)
