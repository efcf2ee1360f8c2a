"""``workbench proxy``'s opt-in resilient policy (``--resilient ROUTE`` or ``[proxy.routes.NAME] policy =
"resilient"``): retries honouring Retry-After and fallbacks on the same provider before the first byte goes to the
application, every attempt traced; a failure no retry fixes still reaches the application as the provider sent it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2

from tests.test_cli import json_lines, workbench
from tests.test_proxy import CANARY, MESSAGES, start_proxy, traces
from workbench.fakeserver.process import FakeServerProcess


def chat(base: str, model: str, **extra: Any) -> httpx2.Response:
    body = {"model": model, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}, **extra}
    return httpx2.post(f"{base}/chat/completions", json=body, headers={"authorization": f"Bearer {CANARY}"},
                       timeout=60)


def attempts(call_id: object) -> list[dict[str, Any]]:
    shown = workbench("traces", "show", str(call_id), "--json")
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, Any]] = json.loads(shown.stdout)["attempts"]
    return found


def test_a_resilient_route_retries_a_429_after_its_retry_after_and_traces_every_attempt(
        fake_server: FakeServerProcess) -> None:
    urls = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}
    for proxy in start_proxy("--resilient", "openai", **urls):
        # two 429s (Retry-After: 1), then the stream: the application sees the stream only
        model = "r@status=429,fail=2,retry_after=1,tokens=6,fixed=1,id=resilient-retry"
        through = chat(f"{proxy.url}/openai/v1", model)
        assert through.status_code == 200
        assert through.content == chat(f"{fake_server.base_url}/v1", model).content  # its counter is used up now
        proxy.stop()
    [row] = traces()
    assert (row["status"], row["output_tokens"], row["attempt_count"], row["served_by"]) == (
        "ok", 6, 3, f"openai/{model}")
    assert [(a["kind"], a["status"], a["wait_ms"]) for a in attempts(row["id"])] == [
        ("first", 429, 0), ("retry", 429, 1000), ("retry", 200, 1000)]  # each retry after the provider's Retry-After
    assert row["latency_ms"] >= 2000


def test_a_resilient_route_holds_its_rate_limit(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    """``[policy.rate_limit] concurrency = 1``: a second call goes upstream only once the first has ended."""
    (tmp_path / "workbench.toml").write_text('[policy.rate_limit]\nconcurrency = 1\n')
    for proxy in start_proxy("--resilient", "openai", cwd=tmp_path, OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(chat, [f"{proxy.url}/openai/v1"] * 2,
                                    ["q@tokens=10,tps=50,id=limited-a", "q@tokens=10,tps=50,id=limited-b"]))
        assert [a.status_code for a in answers] == [200, 200]
        proxy.stop()
    log = [e for e in httpx2.get(f"{fake_server.base_url}/_fake/log").json()
           if e["scenario_id"] in ("limited-a", "limited-b")]
    first, second = sorted(log, key=lambda e: e["received_ns"])
    assert second["received_ns"] >= first["last_token_ns"]  # one at a time
    assert len(traces()) == 2


def test_a_resilient_route_from_workbench_toml_falls_back_to_another_model_and_passes_on_what_no_retry_fixes(
        fake_server: FakeServerProcess, tmp_path: Path) -> None:
    broken = "down@status=503,fail=1000,id=resilient-down"
    (tmp_path / "workbench.toml").write_text(f"""
[proxy.routes.openai]
policy = "resilient"

[policy.retry]
max_retries = 1
base_s = 0.001
cap_s = 0.001

[policy.targets."openai/{broken}"]
fallbacks = ["openai/up@tokens=4", "anthropic/elsewhere"]
""")
    for proxy in start_proxy(cwd=tmp_path, OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        fell_back = chat(f"{proxy.url}/openai/v1", broken)
        assert fell_back.status_code == 200 and b"data: [DONE]" in fell_back.content
        # a Retry-After beyond the cap (60 s) is not waited for, and there is no fallback: the 429 as it came
        limited = "slow@status=429,fail=1000,retry_after=120,fixed=1"
        direct, through = chat(f"{fake_server.base_url}/v1", limited), chat(f"{proxy.url}/openai/v1", limited)
        assert through.status_code == direct.status_code == 429
        assert through.content == direct.content and through.headers["retry-after"] == "120"
        proxy.stop()
    first, second = reversed(traces())
    assert (first["status"], first["served_by"], first["output_tokens"]) == ("ok", "openai/up@tokens=4", 4)
    assert [(a["target"], a["kind"], a["status"]) for a in attempts(first["id"])] == [
        (f"openai/{broken}", "first", 503), (f"openai/{broken}", "retry", 503),
        ("openai/up@tokens=4", "fallback", 200)]
    assert (second["status"], second["error_class"], second["attempt_count"]) == ("error", "http_429", 1)


def test_the_default_passes_a_429_through_without_retrying(fake_server: FakeServerProcess) -> None:
    for proxy in start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        assert chat(f"{proxy.url}/openai/v1", "p@status=429,fail=1,retry_after=0,id=resilient-off").status_code == 429
        proxy.stop()
    [row] = traces()
    assert (row["error_class"], row["attempt_count"]) == ("http_429", 1)


def test_a_route_that_names_no_provider_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('[proxy.routes.nope]\npolicy = "resilient"\n')
    result = workbench("proxy", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"workbench: {tmp_path / 'workbench.toml'}:1: proxy.routes.nope: no provider")
    (tmp_path / "workbench.toml").write_text('[proxy.routes.openai]\npolicy = "sometimes"\n')
    result = workbench("proxy", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "proxy.routes.openai.policy" in result.stderr.splitlines()[0]
    (tmp_path / "workbench.toml").write_text("")
    result = workbench("proxy", "--port", "0", "--resilient", "nope", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("workbench: --resilient nope: no provider")
    assert json_lines(workbench("traces", "list", "--json").stdout) == []


def test_a_resilient_route_gives_up_on_a_silent_provider_after_the_policy_ttft_and_falls_back(
        fake_server: FakeServerProcess, tmp_path: Path) -> None:
    silent = "mute@hang=headers,id=resilient-mute"
    (tmp_path / "workbench.toml").write_text(f"""
[proxy.routes.openai]
policy = "resilient"

[policy.timeouts]
connect = 0.5
ttft = 0.5

[policy.retry]
max_retries = 1
base_s = 0.001
cap_s = 0.001

[policy.targets."openai/{silent}"]
fallbacks = ["openai/up@tokens=3"]
""")
    for proxy in start_proxy(cwd=tmp_path, OPENAI_BASE_URL=f"{fake_server.base_url}/v1"):
        answer = chat(f"{proxy.url}/openai/v1", silent)
        assert answer.status_code == 200 and b"data: [DONE]" in answer.content
        # no fallback and no answer at all: the proxy's own 504
        alone = chat(f"{proxy.url}/openai/v1", "mute@hang=headers,id=resilient-alone")
        assert alone.status_code == 504 and "ttft timeout" in alone.json()["error"]["message"]
        proxy.stop()
    row, last = reversed(traces())
    assert (last["status"], last["error_class"], last["attempt_count"]) == ("error", "timeout", 2)
    assert (row["status"], row["served_by"]) == ("ok", "openai/up@tokens=3")
    assert [(a["kind"], a["status"], a["error"] and "ttft timeout" in a["error"]) for a in attempts(row["id"])] == [
        ("first", None, True), ("retry", None, True), ("fallback", 200, None)]
