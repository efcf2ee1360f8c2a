"""A request's cache breakpoints reach the Anthropic wire as ``cache_control`` on the parts they name; the wires
that cache on their own are sent exactly what they would be without them."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from workbench.core.cache_breakpoints import with_breakpoints
from workbench.core.errors import ConfigError
from workbench.core.registry import make_provider, resolve
from workbench.core.request import CacheBreakpoints, ChatRequest, Message, ModelRef, Params
from workbench.core.tool_turns import TurnToolCall

ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}
TOOLS = ({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
         {"type": "function", "function": {"name": "refund", "parameters": {"type": "object", "properties": {}}}})
TURNS = (Message(role="user", content="Where is order 7?"),
         Message(role="assistant", content="", tool_calls=(TurnToolCall(id="t1", name="lookup"),
                                                           TurnToolCall(id="t2", name="lookup"))),
         Message(role="tool", content="shipped", tool_call_id="t1"),
         Message(role="tool", content="in Lyon", tool_call_id="t2"),
         Message(role="user", content="Thanks, and a refund?"))
EPHEMERAL = {"type": "ephemeral"}


def body(target: str, cache: CacheBreakpoints) -> dict[str, Any]:
    request = ChatRequest(system="Be brief.", messages=TURNS, params=Params(max_tokens=10, tools=TOOLS), cache=cache)
    return make_provider(resolve(ModelRef.parse(target), ENV), httpx2.AsyncClient()).body(request)


def test_anthropic_marks_the_last_tool_the_system_and_the_named_turns() -> None:
    sent = body("anthropic/claude-sonnet-4-5", CacheBreakpoints(tools=True, system=True, messages=(0, 2)))
    assert "cache_control" not in sent["tools"][0] and sent["tools"][1]["cache_control"] == EPHEMERAL
    assert sent["system"] == [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    first, _, results, last = sent["messages"]
    assert first["content"] == [{"type": "text", "text": "Where is order 7?", "cache_control": EPHEMERAL}]
    # the two tool results are one user turn: a breakpoint on either marks that turn's last block
    assert "cache_control" not in results["content"][0] and results["content"][1]["cache_control"] == EPHEMERAL
    assert last["content"] == "Thanks, and a refund?"


def test_anthropic_one_hour_ttl_and_no_breakpoints_no_cache_control() -> None:
    sent = body("anthropic/claude-sonnet-4-5", CacheBreakpoints(messages=(4,), ttl="1h"))
    assert sent["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert sent["system"] == "Be brief."
    assert "cache_control" not in str(body("anthropic/claude-sonnet-4-5", CacheBreakpoints()))


@pytest.mark.parametrize("target", ["openai/gpt-4o", "openai-responses/gpt-4o", "gemini/gemini-2.5-flash"])
def test_providers_that_cache_by_themselves_are_sent_the_same_body(target: str) -> None:
    assert body(target, CacheBreakpoints(tools=True, system=True, messages=(0, 4), ttl="1h")) == \
        body(target, CacheBreakpoints())


def test_breakpoints_are_checked() -> None:
    request = ChatRequest.from_prompt("hi", system="S")
    with pytest.raises(ValueError, match="at most 4"):
        ChatRequest(system="S", messages=TURNS, params=Params(tools=TOOLS),
                    cache=CacheBreakpoints(system=True, tools=True, messages=(0, 1, 4)))
    assert with_breakpoints(request, ["system", "last", "1", "-1"]).cache == CacheBreakpoints(system=True,
                                                                                             messages=(0,))
    assert with_breakpoints(request, [], "1h").cache.ttl == "1h"
    with pytest.raises(ConfigError, match="0: the request has 1 message"):
        with_breakpoints(request, ["0"])
