"""``workbench run`` end to end in a subprocess: JSON lines, prompt sources, failures, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import genai_prices
import pytest

from workbench.core.timing import MIN_GENERATION_MS
from workbench.fakeserver.process import FakeServerProcess

JSON_FIELDS = {"target", "text", "ttft_ms", "latency_ms", "tokens_per_s", "input_tokens", "output_tokens",
               "usage_estimated", "finish_reason", "status", "error", "tool_calls", "cache_read_tokens",
               "cache_write_tokens"}
CANARY = "sk-canary-7f3a9c1e5b2d4068a1b3c5d7e9f0QZXW"


def workbench(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    return subprocess.run([sys.executable, "-m", "workbench", *args], input=stdin, capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60, cwd=cwd)


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_run_json_races_every_target_with_the_builtin_fake_server() -> None:
    result = workbench("run", "Hello there", "-m", "fake/a@tokens=8,tps=100", "-m", "fake-anthropic/b@tokens=5",
                       "--json")
    assert result.returncode == 0, result.stderr
    rows = json_lines(result.stdout)
    assert [r["target"] for r in rows] == ["fake/a@tokens=8,tps=100", "fake-anthropic/b@tokens=5"]
    for row in rows:
        assert set(row) >= JSON_FIELDS
        assert row["status"] == "ok" and row["error"] is None and row["finish_reason"] == "stop"
        assert isinstance(row["ttft_ms"], float) and isinstance(row["latency_ms"], float)
        assert row["usage_estimated"] is False
    assert rows[0]["output_tokens"] == 8 and len(str(rows[0]["text"]).split()) == 8
    assert isinstance(rows[0]["tokens_per_s"], float)


def test_a_failing_target_reports_one_line_and_the_others_finish() -> None:
    result = workbench("run", "hi", "-m", "fake/ok@tokens=3", "-m", "fake/down@status=503,fail=5,id=cli503",
                       "-m", "openai/gpt-4.1-mini", "--json")
    assert result.returncode == 1
    ok, down, nokey = json_lines(result.stdout)
    assert ok["status"] == "ok"
    assert down["status"] == "error" and "503" in str(down["error"]) and "\n" not in str(down["error"])
    assert nokey["status"] == "error" and "no API key" in str(nokey["error"])
    assert "OPENAI_API_KEY" in str(nokey["error_hint"]) and ok["error_hint"] is None and "retry" in down["error_hint"]
    assert "Traceback" not in result.stderr


def test_prompt_from_stdin_and_from_a_file(tmp_path: Path) -> None:
    via_stdin = workbench("run", "-m", "fake/echo@tokens=4", "--json", stdin="Prompt from a pipe")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Prompt from a pipe", encoding="utf-8")
    via_file = workbench("run", "-f", str(prompt), "-m", "fake/echo@tokens=4", "--json")
    assert via_stdin.returncode == via_file.returncode == 0
    assert json_lines(via_stdin.stdout)[0]["text"] == json_lines(via_file.stdout)[0]["text"]


def test_bad_input_gets_a_clear_message_and_no_traceback(tmp_path: Path) -> None:
    missing = workbench("run", "-f", str(tmp_path / "nope.txt"), "-m", "fake/x")
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    bad_ref = workbench("run", "hi", "-m", "no-slash", "--json")
    assert bad_ref.returncode == 1 and "not a model reference" in str(json_lines(bad_ref.stdout)[0]["error"])
    bad_param = workbench("run", "hi", "-m", "fake/x", "--temperature", "9")
    assert bad_param.returncode == 2 and "temperature" in bad_param.stderr and "Traceback" not in bad_param.stderr


def test_human_output_shows_columns_with_metrics() -> None:
    result = workbench("run", "hi", "-m", "fake/a@tokens=5", "-m", "fake-ollama/b@tokens=5,usage=0")
    assert result.returncode == 0, result.stderr
    assert "fake/a@tokens=5" in result.stdout and "fake-ollama/b@tokens=5,usage=0" in result.stdout
    assert "TTFT" in result.stdout and "≈" in result.stdout  # estimated usage is marked


@pytest.mark.parametrize("target", ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"])
def test_canary_key_never_appears_in_anything_written(target: str, fake_server: FakeServerProcess,
                                                      tmp_path: Path) -> None:
    provider = target.split("/")[0].upper()
    base = fake_server.base_url + ("/v1" if provider == "OPENAI" else "")
    env = {f"{provider}_API_KEY": CANARY, f"{provider}_BASE_URL": base, "GOOGLE_GEMINI_BASE_URL": base}
    from tests.test_secrets_echo import key_encodings

    ok = workbench("run", "hi", "-m", f"{target}@tokens=3", "--json", env=env, cwd=tmp_path)
    failed = workbench("run", "hi", "-m", f"{target}@status=401,fail=9,id=canary-{provider}", env=env, cwd=tmp_path)
    # a 401 quoting the key verbatim, URL-encoded and lower-cased: in the columns, in --json, in the trace log
    echoed = [workbench("run", "hi", "-m", f"{target}@echo_key=1,id=canary-echo-{provider}", *flag, env=env,
                        cwd=tmp_path) for flag in ((), ("--json",))]
    exported = workbench("traces", "export", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert failed.returncode == 1 and all(e.returncode == 1 and "[key]" in e.stdout for e in echoed)
    written = "".join(r.stdout + r.stderr for r in (ok, failed, *echoed, exported))
    written += "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert [form for form in key_encodings(CANARY) if form in written] == []
    assert CANARY[-12:] not in written
    assert "QZXW" not in written  # not even the masked form a provider quotes back in a 401


def test_fallback_and_retries_flags_show_in_the_json_timeline() -> None:
    result = workbench("run", "hi", "-m", "fake/down@status=503,fail=9,id=cli-fb", "--fallback",
                       "fake-gemini/spare@tokens=3", "--retries", "0", "--json")
    assert result.returncode == 0, result.stderr
    row = json_lines(result.stdout)[0]
    assert row["served_by"] == "fake-gemini/spare@tokens=3" and row["status"] == "ok"
    attempts = row["attempts"]
    assert [a["kind"] for a in attempts] == ["first", "fallback"]  # type: ignore[union-attr]
    assert attempts[0]["status"] == 503 and attempts[1]["status"] == 200  # type: ignore[index]
    assert set(attempts[0]) == {"target", "kind", "status", "error", "wait_ms", "ttft_ms"}  # type: ignore[index]


def test_first_token_timeout_flag(tmp_path: Path) -> None:
    result = workbench("run", "hi", "-m", "fake/stuck@hang=headers", "--timeout-ttft-ms", "200", "--retries", "0",
                       "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert "first-token timeout" in str(json_lines(result.stdout)[0]["error"])


def test_a_bad_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[policy.retry]\nmax_retries = -2\n", encoding="utf-8")
    result = workbench("run", "hi", "-m", "fake/x", cwd=tmp_path)
    assert result.returncode == 2 and "workbench.toml" in result.stderr and "max_retries" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_json_fields_and_unknown_prices(tmp_path: Path) -> None:
    prompt = tmp_path / "p.txt"
    prompt.write_text("Summarise this report in three bullet points.", encoding="utf-8")
    result = workbench("tokens", str(prompt), "-m", "openai/gpt-4.1-mini", "-m", "ollama/llama3.2",
                       "--max-tokens", "100", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gpt, llama = json_lines(result.stdout)
    assert {"target", "input_tokens", "exact", "cost_input_usd", "cost_max_usd", "context_window",
            "headroom_tokens"} <= set(gpt)
    assert gpt["exact"] is True and gpt["input_tokens"] == 16  # 9 text tokens + 3 per message + 3 priming
    assert 0 < gpt["cost_input_usd"] < gpt["cost_max_usd"]  # type: ignore[operator]
    assert gpt["headroom_tokens"] == 1_000_000 - 16 - 100
    assert llama["exact"] is False and llama["cost_input_usd"] is None and llama["cost_max_usd"] is None


def test_tokens_raw_counts_plain_text_from_stdin() -> None:
    chat = json_lines(workbench("tokens", "-m", "openai/gpt-4o", "--json", stdin="hello world").stdout)[0]
    raw = json_lines(workbench("tokens", "-m", "openai/gpt-4o", "--json", "--raw", stdin="hello world").stdout)[0]
    assert (raw["input_tokens"], chat["input_tokens"]) == (2, 8)


def test_run_json_has_the_cost_of_a_priced_model(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OPENAI_API_KEY": "test"}
    result = workbench("run", "hi", "-m", "openai/gpt-4.1-mini@tokens=5", "-m", "fake/x@tokens=5", "--json",
                       env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    priced, unpriced = json_lines(result.stdout)
    expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=priced["input_tokens"],
                                                          output_tokens=priced["output_tokens"]),
                                       "gpt-4.1-mini", provider_id="openai").total_price
    assert priced["cost_usd"] == pytest.approx(float(expected)) and float(expected) > 0
    assert unpriced["cost_usd"] is None


def test_tokens_asks_the_provider_when_it_can_and_not_with_offline(fake_server: FakeServerProcess) -> None:
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url}
    online = json_lines(workbench("tokens", "-m", "fake-anthropic/x", "--json", stdin="count me", env=env).stdout)[0]
    offline = json_lines(workbench("tokens", "-m", "fake-anthropic/x", "--json", "--offline", stdin="count me",
                                   env=env).stdout)[0]
    assert online["exact"] is True and online["input_tokens"] == 5  # the server's count: 2 words + 3
    assert offline["exact"] is False


def test_hedge_at_the_targets_p95_ttft_from_the_trace_log(tmp_path: Path) -> None:
    from tests.test_traces import synthetic
    from workbench.core.traces.writer import TraceWriter

    env = {"WORKBENCH_TRACES": str(tmp_path / "p95.db")}
    target = "fake/hist@ttft=2000,tokens=3,id=p95"
    writer = TraceWriter(Path(env["WORKBENCH_TRACES"]))  # this target's history: TTFTs of 1 to 20 ms
    for record in synthetic(20, time.time() - 3600):
        record.target = target
        writer.write(record)
    writer.close()
    result = workbench("run", "x", "-m", target, "--fallback", "fake-anthropic/quick@tokens=2", "--hedge-ms", "p95",
                       "--json", env=env)
    row = json_lines(result.stdout)[0]
    assert row["served_by"] == "fake-anthropic/quick@tokens=2"
    assert sorted(a["kind"] for a in row["attempts"]) == ["first", "hedge"]  # type: ignore[union-attr]
    assert row["latency_ms"] < 1500  # type: ignore[operator]


def test_an_instant_reply_has_no_rate_rather_than_an_absurd_one() -> None:
    """Five tokens sent at once: no rate (``–``); on a busy machine their reads may come apart, and a rate is
    then measured over at least MIN_GENERATION_MS, never tens of thousands of tokens a second."""
    most = 4 / (MIN_GENERATION_MS / 1000)  # four tokens after the first, over the shortest span measured
    as_json = workbench("run", "hi", "-m", "fake/instant@tokens=5", "-m", "fake/paced@tokens=5,tps=100", "--json")
    assert as_json.returncode == 0, as_json.stderr
    instant, paced = json_lines(as_json.stdout)
    assert instant["tokens_per_s"] is None or instant["tokens_per_s"] <= most  # type: ignore[operator]
    assert isinstance(paced["tokens_per_s"], float) and 20 < paced["tokens_per_s"] < 400
    shown = workbench("run", "hi", "-m", "fake/instant@tokens=5")
    figure = re.search(r"tok/s (\S+)", shown.stdout)
    assert shown.returncode == 0 and figure is not None, shown.stdout
    assert figure[1] == "–" or float(figure[1]) <= most, shown.stdout
    traced = {row["target"]: row["tokens_per_s"] for row in json_lines(workbench("traces", "list", "--json").stdout)}
    rate = traced["fake/instant@tokens=5"]
    assert rate is None or rate <= most  # type: ignore[operator]


def test_a_model_ollama_has_not_pulled_says_how_to_pull_it() -> None:
    result = workbench("run", "hi", "-m", "fake-ollama/qwen3@status=404,fail=5,id=nopull")
    assert result.returncode == 1
    shown = " ".join(result.stdout.replace("│", " ").split())  # the panel's lines joined
    assert 'model "qwen3" not found' in shown and "`ollama pull qwen3@status" in shown, shown
