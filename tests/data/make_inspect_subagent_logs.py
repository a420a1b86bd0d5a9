"""Writes inspect_as_tool.eval and inspect_handoff.eval: a react agent delegating to a
sub-agent, logged by Inspect AI itself (0.3.285 made the files in tests/data). Not run by
the tests; to remake them:

    python3 -m venv /tmp/insp && /tmp/insp/bin/pip install inspect_ai==0.3.285
    /tmp/insp/bin/python tests/data/make_inspect_subagent_logs.py /tmp/sublogs
    cp /tmp/sublogs/tool/*.eval tests/data/inspect_as_tool.eval
    cp /tmp/sublogs/handoff/*.eval tests/data/inspect_handoff.eval

The main agent hands "What is 1+2?" to a `researcher` react agent — run as a tool
(`as_tool`: its messages stay out of the sample's, its calls are in the events) or by
`handoff` (Inspect inlines its messages). Inspect's `mockllm/model` plays the four calls in
order: main asks the researcher, the researcher calls add(1, 2) and submits 3, main submits
3. Call i reports 100 (i + 1) input tokens, 10 + i output tokens and costs $0.001 (i + 1)."""

import sys

import inspect_ai.model._model as _model
import inspect_ai.model._tokens as _tokens
from inspect_ai import Task, eval, task
from inspect_ai.agent import as_tool, handoff, react
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import includes
from inspect_ai.tool import tool

# Inspect counts message tokens with tiktoken, which downloads its tables: count offline
_tokens.count_text_tokens = lambda text: max(1, len(text) // 4)
if hasattr(_model, "count_text_tokens"):
    _model.count_text_tokens = _tokens.count_text_tokens


@tool
def add():
    async def execute(x: int, y: int):
        """Add two numbers.

        Args:
            x: first
            y: second
        """
        return str(x + y)

    return execute


def call(function: str, arguments: dict, i: int) -> ModelOutput:
    out = ModelOutput.for_tool_call("mockllm/model", function, arguments)
    out.usage = ModelUsage(input_tokens=100 * (i + 1), output_tokens=10 + i, total_tokens=100 * (i + 1) + 10 + i,
                           total_cost=0.001 * (i + 1))
    return out


researcher = react(name="researcher", description="Does arithmetic with the add tool.", prompt="Use add.",
                   tools=[add()])
for mode, delegate, ask in (("tool", as_tool(researcher), ("researcher", {"input": "compute 1+2"})),
                            ("handoff", handoff(researcher), ("transfer_to_researcher", {}))):

    @task(name="delegate")
    def delegate_task(delegate=delegate):
        return Task(dataset=[Sample(id="s1", input="What is 1+2?", target="3")],
                    solver=react(prompt="Delegate arithmetic.", tools=[delegate]), scorer=includes())

    outputs = [call(*ask, 0), call("add", {"x": 1, "y": 2}, 1), call("submit", {"answer": "3"}, 2),
               call("submit", {"answer": "3"}, 3)]
    eval(delegate_task(), model=get_model("mockllm/model", custom_outputs=outputs), log_dir=f"{sys.argv[1]}/{mode}",
         display="none")
