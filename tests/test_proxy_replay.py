"""A call captured by ``workbench proxy`` (the official openai SDK pointed at it, in front of the fake server)
is stored with its exact turns, tools and parameters, opens in the editor as it was sent, and is promoted to a test
of a new suite that passes when run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import prompt_workspace
from tests.images import png
from tests.test_cli import json_lines, workbench
from tests.test_proxy import CANARY, Proxy, start_proxy
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in
from workbench.core.evals.suite import load_suite
from workbench.fakeserver.process import FakeServerProcess
from workbench.ui.screens.modals import PromoteScreen

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
MODEL = "m@tools=1"
CONVERSATION = [
    {"role": "system", "content": "You answer with tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    {"role": "user", "content": "And in Rome?"},
]


@pytest.fixture
def captured(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    """The proxy after one call of the openai SDK through it: a conversation with tool turns, tools, parameters."""
    for proxy in start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        client = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=CANARY)
        reply = client.chat.completions.create(model=MODEL, messages=CONVERSATION, tools=[WEATHER],  # type: ignore[arg-type,list-item]
                                               tool_choice="required", temperature=0.4, seed=5, max_tokens=60)
        assert [c.function.name for c in reply.choices[0].message.tool_calls or ()] == ["get_weather"]  # type: ignore[union-attr]
        proxy.stop()
        yield proxy


def shown() -> dict[str, Any]:
    (row,) = json_lines(workbench("traces", "list", "--json").stdout)
    detail = json.loads(workbench("traces", "show", str(row["id"]), "--json").stdout)
    assert isinstance(detail, dict)
    return detail


def test_the_captured_call_is_stored_with_its_exact_turns_tools_and_parameters(captured: Proxy) -> None:
    detail = shown()
    request = detail["request"]
    assert request["system"] == "You answer with tools."
    assert request["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "user", "content": "And in Rome?"},
    ]
    assert request["params"] == {"temperature": 0.4, "seed": 5, "max_tokens": 60, "tools": [WEATHER],
                                 "tool_choice": "required"}
    assert [c["name"] for c in detail["tool_calls"]] == ["get_weather"] and detail["target"] == f"openai/{MODEL}"


async def test_a_captured_call_opens_in_the_editor_as_sent_and_is_promoted_to_a_passing_test(
        captured: Proxy, tmp_path: Path, fake_server: FakeServerProcess) -> None:
    (tmp_path / "ws").mkdir()
    workspace = prompt_workspace(tmp_path / "ws")
    env = {"WORKBENCH_TRACES": os.environ["WORKBENCH_TRACES"], "OPENAI_BASE_URL": f"{fake_server.base_url}/v1",
           "OPENAI_API_KEY": "sk-test"}
    app = app_in(workspace, env, targets=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await wait_for(pilot, lambda: app.screen is traces and traces.detail is not None)
        await pilot.press("ctrl+r")
        screen = editor(app)
        await wait_for(pilot, lambda: app.screen is screen and screen.targets() == [f"openai/{MODEL}"])
        request = screen.build_request()
        assert request.system == "You answer with tools."
        assert [(m.role, m.content, [c.name for c in m.tool_calls], m.tool_call_id) for m in request.messages] == [
            ("user", "Weather in Paris?", [], None), ("assistant", "", ["get_weather"], None),
            ("tool", "sunny", [], "c1"), ("user", "And in Rome?", [], None)]
        params = request.params
        assert (params.temperature, params.seed, params.max_tokens, params.tool_choice) == (0.4, 5, 60, "required")
        assert params.tools == (WEATHER,)

        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen is traces and traces.detail is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        form = app.screen
        assert form.query_one("#kind").value == "tool-call-f1" and form.query_one("#value").value == "get_weather"
        assert form.query_one("#description").value == "And in Rome?"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("written to evals/" in m for m in messages(app)))

    (path,) = (workspace / "evals").glob("*.yaml")
    suite = load_suite(path, workspace)
    (target,) = suite.targets
    assert target.params["tools"] == [WEATHER] or target.params["tools"] == (WEATHER,)
    result = workbench("eval", str(path), "--json", "--no-cache", cwd=workspace, env=env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1


def test_every_captured_row_has_the_upstream_status_success_or_not(fake_server: FakeServerProcess) -> None:
    for proxy in start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        client = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=CANARY, max_retries=0)
        stream = client.chat.completions.create(model="s@tokens=3", messages=CONVERSATION[1:2], stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        for status in (429, 503):
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(model=f"e{status}@status={status},fail=9",  # type: ignore[arg-type]
                                               messages=CONVERSATION[1:2])
        proxy.stop()
    assert workbench("run", "hi", "-m", "fake/own@tokens=2").returncode == 0  # a workbench call, for comparison
    rows = {str(r["model"]).split("@")[0]: r for r in json_lines(workbench("traces", "list", "--json").stdout)}
    statuses = {}
    for name, row in rows.items():
        detail = json.loads(workbench("traces", "show", str(row["id"]), "--json").stdout)
        statuses[name] = detail["http_status"]
        assert detail["attempts"][-1]["status"] == detail["http_status"]
    assert statuses == {"s": 200, "e429": 429, "e503": 503, "own": 200}


def test_a_captured_anthropic_call_keeps_its_tools_and_what_its_image_was_never_its_bytes(
        fake_server: FakeServerProcess) -> None:
    image = png(4, 3)
    encoded = base64.b64encode(image).decode()
    for proxy in start_proxy(ANTHROPIC_BASE_URL=fake_server.base_url):
        client = anthropic.Anthropic(base_url=f"{proxy.url}/anthropic", api_key=CANARY)
        client.messages.create(model="a@tokens=3", max_tokens=50, system="Describe.", messages=[  # type: ignore[arg-type]
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": encoded}},
                                         {"type": "text", "text": "What is this?"}]}],
            tools=[{"name": "get_weather", "description": "Weather now",
                    "input_schema": WEATHER["function"]["parameters"]}])  # type: ignore[index]
        proxy.stop()
    detail = shown()
    (message,) = detail["request"]["messages"]
    assert message["content"] == "What is this?" and detail["request"]["system"] == "Describe."
    assert message["attached"] == [{"name": "attachment-1", "media_type": "image/png", "size": len(image),
                                    "sha256": hashlib.sha256(image).hexdigest(), "width": 4, "height": 3}]
    assert detail["request"]["params"]["tools"] == [WEATHER] and detail["http_status"] == 200
    store = Path(os.environ["WORKBENCH_TRACES"])
    assert encoded[:40].encode() not in b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))


def test_run_continue_goes_on_from_a_captured_call_with_its_turns_and_tools(
        captured: Proxy, fake_server: FakeServerProcess) -> None:
    detail = shown()
    (call,) = detail["tool_calls"]
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OPENAI_API_KEY": "sk-test"}
    ran = workbench("run", "--continue", str(detail["id"]), "--tool-result", f"{call['id']}=rainy", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    (row,) = json_lines(ran.stdout)
    assert row["status"] == "ok" and row["target"] == f"openai/{MODEL}"
    went_on = json.loads(workbench("traces", "show", str(row["trace_id"]), "--json").stdout)["request"]
    assert went_on["system"] == "You answer with tools." and went_on["params"]["tools"] == [WEATHER]
    assert went_on["messages"][:4] == detail["request"]["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in went_on["messages"][4:]] == [
        ("assistant", None), ("tool", call["id"])]
    assert went_on["messages"][-1]["content"] == "rainy"


def test_a_captured_reply_keeps_its_signed_thinking_and_origin_to_go_on_with(fake_server: FakeServerProcess) -> None:
    """An Anthropic reply with thinking and a tool call, captured: its signed thinking is kept with the provider
    and wire that made it, so a continued call sends it back there only."""
    for proxy in start_proxy(ANTHROPIC_BASE_URL=fake_server.base_url):
        client = anthropic.Anthropic(base_url=f"{proxy.url}/anthropic", api_key=CANARY)
        client.messages.create(model="t@tools=1,reasoning=6", max_tokens=4000, messages=[  # type: ignore[arg-type]
            {"role": "user", "content": "Weather in Paris?"}], thinking={"type": "enabled", "budget_tokens": 2048},
            tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}])  # type: ignore[index]
        proxy.stop()
    (call,) = shown()["tool_calls"]
    assert call["origin"] == "anthropic:anthropic"
    (item,) = call["reasoning_items"]
    assert item["kind"] == "thinking" and item["signature"] and item["text"]
