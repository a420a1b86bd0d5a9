"""Writes inspect_agent_zstd.eval: an agent eval logged by Inspect AI itself (0.3.285 made
the file in tests/data), for the importer's tests. Not run by the tests; to remake the file:

    python3 -m venv /tmp/insp && /tmp/insp/bin/pip install inspect_ai==0.3.285
    /tmp/insp/bin/python tests/data/make_inspect_agent_log.py /tmp/logs && cp /tmp/logs/*.eval tests/data/inspect_agent_zstd.eval

The model is Inspect's `mockllm/model` playing scripted tool calls (no network): sample a1
adds and submits, a2's first call makes the tool raise a ToolError, a3 calls the tool until
the message limit ends it. Every call reports usage as a caching provider does under
Inspect >= 0.3.184 (input tokens exclude the cache reads and writes; total_cost set), so the
per-call and per-sample token counts are known: see test_inspect_agent_log_* in
tests/test_importers.py. Tool output over 100 characters makes Inspect store event text
as `attachment://` references."""

import sys

import inspect_ai.model._model as _model
import inspect_ai.model._tokens as _tokens
from inspect_ai import Task, eval, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import includes
from inspect_ai.solver import basic_agent
from inspect_ai.tool import ToolError, tool

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
        if x < 0:
            raise ToolError("negative numbers are not supported: " + "x" * 120)
        return f"{x + y} " + "long output " * 20

    return execute


@task
def arith():
    return Task(
        dataset=[Sample(id="a1", input="What is 1+2? " + "context " * 30, target="3"),
                 Sample(id="a2", input="What is -1+2?", target="1"),
                 Sample(id="a3", input="What is 2+2?", target="4")],
        solver=basic_agent(tools=[add()], max_attempts=1, message_limit=8),
        scorer=includes(),
    )


def call(tool_name: str, args: dict, i: int) -> ModelOutput:
    out = ModelOutput.for_tool_call("mockllm/model", tool_name, args)
    # call i: 100 + 10 i input tokens at full rate, 1000 i read from the cache, 50 written to it
    out.usage = ModelUsage(input_tokens=100 + 10 * i, output_tokens=5 + i, input_tokens_cache_read=1000 * i,
                           input_tokens_cache_write=50, total_tokens=100 + 10 * i + 1000 * i + 50 + 5 + i,
                           total_cost=0.001 * (i + 1))
    return out


script = [("add", {"x": 1, "y": 2}), ("submit", {"answer": "3"}),
          ("add", {"x": -1, "y": 2}), ("add", {"x": 1, "y": 0}), ("submit", {"answer": "1"}),
          ("add", {"x": 2, "y": 2}), ("add", {"x": 2, "y": 2}), ("add", {"x": 2, "y": 2}), ("add", {"x": 2, "y": 2})]
model = get_model("mockllm/model", custom_outputs=[call(name, args, i) for i, (name, args) in enumerate(script)])
eval(arith(), model=model, log_dir=sys.argv[1], log_format="eval", max_samples=1, display="none")
