"""``workbench load``: the real CLI against the fake server, every call in a real trace log.

Durations are short and every assertion is on counts, on agreement between two records of the same calls (the
report, the trace log, the fake server's own counters), or on bounds that hold however slow the machine is."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import workbench
from tests.test_cli_refusals import no_calls_traced, refused
from workbench.core.load.generator import LoadRun, Planned
from workbench.core.load.report import report_of
from workbench.core.load.report_formats import render, summary_rows
from workbench.core.load.schedule import ClosedLoop, OpenLoop
from workbench.core.request import ChatRequest
from workbench.core.traces.filters import Filters, parse_filters
from workbench.core.traces.stats import exact_quantile
from workbench.core.traces.store import TraceStore
from workbench.fakeserver.process import fake_server_process

PRICES = '[prices."fake/*"]\ninput_per_mtok = 1000\noutput_per_mtok = 2000\n'
PROMPT = "name: hello\nmessages:\n  - role: user\n    content: 'Say hello to {{who}}'\nvariables:\n  who:\n" \
         "    default: world\n"


def _workspace(root: Path, toml: str = "") -> Path:
    (root / "workbench.toml").write_text(toml)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "prompts" / "hello.yaml").write_text(PROMPT)
    return root


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _traced(tag: str) -> list[dict[str, Any]]:
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    try:
        return list(store.export(Filters(tag=tag)))
    finally:
        store.close()


def _attempt_statuses(rows: list[dict[str, Any]]) -> Counter[int | None]:
    return Counter(a["status"] for row in rows for a in json.loads(row["attempts_json"] or "[]"))


def _fake(base_url: str, path: str, data: bytes | None = None) -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(f"{base_url}{path}", data=data)) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


# -- the schedule ------------------------------------------------------------------------------------------------

def test_an_open_loop_spaces_its_arrivals_evenly_and_ramps_linearly() -> None:
    flat = OpenLoop(10, 2)
    assert flat.expected == 20 and list(flat.offsets())[:3] == [0.0, 0.1, 0.2]
    ramped = OpenLoop(10, 4, ramp_s=2)
    offsets = list(ramped.offsets())
    assert len(offsets) == 10 + 20  # half the rate over the ramp, then the rate
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(g2 <= g1 + 1e-9 for g1, g2 in itertools.pairwise(gaps))  # faster and faster, then steady
    assert gaps[-1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="ramp"):
        OpenLoop(10, 2, ramp_s=3)
    with pytest.raises(ValueError, match="concurrency"):
        ClosedLoop(0, 2)


def test_trace_filters_read_as_key_value_words() -> None:
    filters = parse_filters("provider=openai, tag=prod target=openai/gpt-4.1 prompt-version=3 min-cost=0.5")
    assert (filters.provider, filters.tag, filters.model, filters.prompt_version, filters.min_cost) == (
        "openai", "prod", "openai/gpt-4.1", 3, 0.5)
    assert parse_filters("all") == Filters() == parse_filters("")
    assert parse_filters("since=2h").since is not None


def test_a_report_of_no_call_renders_and_one_far_behind_its_schedule_says_so() -> None:
    run = LoadRun([Planned("fake/a", ChatRequest.from_prompt("x"))], OpenLoop(1, 1))
    empty = report_of(run, ["fake/a"], "x")
    assert empty.calls == 0 and empty.latency_ms["p50"] is None and empty.achieved_rate is None
    assert "<svg" in render(empty, "html") and json.loads(render(empty, "json"))["calls"] == 0
    assert not [value for name, value in summary_rows(empty) if name == "warning"]
    run.stats.lateness_ms = [1.0, 2.0, 900.0]  # the p99 of three: past 100 ms
    behind = [value for name, value in summary_rows(report_of(run, ["fake/a"], "x")) if name == "warning"]
    assert behind and "fell behind its schedule" in behind[0]


# -- a run and its report --------------------------------------------------------------------------------------

def test_the_report_agrees_with_the_trace_log(tmp_path: Path) -> None:
    root = _workspace(tmp_path, PRICES)
    targets = ("fake/a@tokens=6", "fake-anthropic/b@tokens=4,ttft=5", "fake/broken@status=400,fail=1000")
    result = workbench("load", *targets, "--rate", "30/s", "--duration", "1s", "--prompt", "hello", "--var",
                       "who=Ada", "--json", "--report", "r.md", "--report", "r.html", "--report", "r.json", cwd=root)
    assert result.returncode == 0, result.stderr
    report = _report(result)
    rows = _traced(report["tag"])
    assert report["calls"] == len(rows) == report["sent"] == 30
    assert report["ok"] == sum(r["status"] == "ok" for r in rows) == 20
    assert report["errors"] == dict(Counter(r["error_class"] for r in rows if r["status"] != "ok")) == {"http_400": 10}
    ok = [r for r in rows if r["status"] == "ok"]
    for name, column in (("latency_ms", "total_ms"), ("ttft_ms", "total_ttft_ms")):
        values = sorted(r[column] for r in ok)
        for q in (0.5, 0.95, 0.99):
            assert report[name][f"p{round(q * 100)}"] == pytest.approx(exact_quantile(values, q), abs=1e-6)
    assert report["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in rows))
    assert report["output_tokens"] == sum(r["output_tokens"] or 0 for r in rows)
    assert report["input_tokens"] == sum(r["input_tokens"] or 0 for r in rows)
    assert report["rate_limited"] == _attempt_statuses(rows)[429] == 0
    by_target = {t["target"]: t for t in report["by_target"]}
    assert {t: by_target[t]["calls"] for t in targets} == dict(Counter(r["target"] for r in rows)) == dict.fromkeys(
        targets, 10)
    assert all("Say hello to Ada" in r["request_json"] and r["prompt_name"] == "hello" for r in rows)
    assert report["lateness_ms"]["p99"] is not None and report["lateness_ms"]["p50"] <= report["lateness_ms"]["p99"]
    assert sum(s["started"] for s in report["seconds"]) == 30
    assert json.loads((root / "r.json").read_text())["calls"] == 30
    markdown = (root / "r.md").read_text()
    assert report["run_id"] in markdown and "| calls | 30 (20 ok, 10 errors) |" in markdown
    html = (root / "r.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html
    assert "://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no network asset
    for svg in html.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed


def test_a_closed_loop_keeps_n_calls_in_flight_and_reports_no_lateness(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    result = workbench("load", "fake/a@tokens=3", "--concurrency", "2", "--duration", "0.5s", "--prompt", "hello",
                       "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    report = _report(result)
    assert report["concurrency"] == 2 and report["rate"] is None and report["lateness_ms"] is None
    assert report["calls"] == report["ok"] == len(_traced(report["tag"])) >= 2


def _most_at_once(rows: list[dict[str, Any]]) -> int:
    """The most of these traced calls under way at once (each from its start to its end)."""
    edges = sorted([(r["ts"], 1) for r in rows] + [(r["ts"] + r["total_ms"] / 1000, -1) for r in rows])
    return max(itertools.accumulate(step for _, step in edges))


def test_open_loop_sends_on_schedule_without_waiting_for_replies_and_closed_loop_waits(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    slow = "fake/slow@ttft=2500,tokens=1"
    opened = workbench("load", slow, "--rate", "20/s", "--duration", "1s", "--prompt", "hello", "--json", cwd=root)
    assert opened.returncode == 0, opened.stderr
    rows = _traced(_report(opened)["tag"])
    first_end = min(r["ts"] + r["total_ms"] / 1000 for r in rows)
    assert len(rows) == 20 and all(r["ts"] < first_end for r in rows)  # every call sent before any reply ended
    assert _most_at_once(rows) == 20
    closed = workbench("load", "fake/slow@ttft=300,tokens=1", "--concurrency", "2", "--duration", "1s", "--prompt",
                       "hello", "--json", cwd=root)
    assert closed.returncode == 0, closed.stderr
    rows = _traced(_report(closed)["tag"])
    assert len(rows) >= 2 and _most_at_once(rows) <= 2  # each worker waits for its reply


def test_plain_progress_lines_when_not_a_terminal(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    result = workbench("load", "fake/a@tokens=3", "--rate", "5/s", "--duration", "1s", "--prompt", "hello", cwd=root)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if " sent " in line]
    assert progress and all("in flight" in line and "429s" in line for line in progress)
    assert "\x1b[" not in result.stderr
    assert any(line.startswith("calls ") and "5 (5 ok, 0 errors)" in line for line in result.stdout.splitlines())


def test_max_cost_stops_sending_once_spent(tmp_path: Path) -> None:
    root = _workspace(tmp_path, PRICES)
    result = workbench("load", "fake/a@tokens=5", "--rate", "20/s", "--duration", "10s", "--prompt", "hello",
                       "--max-cost", "0.05", "--json", cwd=root)
    assert result.returncode == 3, result.stderr
    report = _report(result)
    assert report["stop_reason"].startswith("max cost: spent $")
    assert report["cost_usd"] >= 0.05
    assert report["calls"] < 200 / 2  # far fewer than the schedule held
    rows = _traced(report["tag"])
    assert len(rows) == report["calls"]
    assert report["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows))


# -- sources --------------------------------------------------------------------------------------------------

def test_times_multiplies_the_peak_minute_of_traced_calls_and_replays_them(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    for word in ("alpha", "beta", "gamma", "delta"):
        assert workbench("run", f"Replay {word}", "-m", "fake/seed@tokens=2", "--json", cwd=root).returncode == 0
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    minutes = Counter(int(r["ts"] // 60) for r in store.export(Filters(model="fake/seed@tokens=2")))
    store.close()
    peak = max(minutes.values())  # 4, or fewer when the minute turned between the calls
    runs = []
    for _ in range(2):  # the first load test's own calls never count towards the peak of the second
        result = workbench("load", "fake/replayed@tokens=2", "--times", "60", "--duration", "1s", "--from-traces",
                           "target=fake/seed@tokens=2", "--json", cwd=root)
        assert result.returncode == 0, result.stderr
        runs.append(_report(result))
    for report in runs:
        assert report["rate"] == pytest.approx(60 * peak / 60)
        assert f"peak minute of the calls --from-traces matches ({peak} calls)" in report["source"]
        rows = _traced(report["tag"])
        assert {json.loads(r["request_json"])["messages"][0]["content"] for r in rows} <= {
            "Replay alpha", "Replay beta", "Replay gamma", "Replay delta"}
        assert len(rows) == report["calls"] > 0 and {r["target"] for r in rows} == {"fake/replayed@tokens=2"}


def test_a_suite_s_rendered_requests_are_sent(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    (root / "suite.yaml").write_text("prompts:\n  - 'Say {{word}}'\ntests:\n  - vars: {word: one}\n"
                                     "  - vars: {word: two}\n")
    result = workbench("load", "fake/a@tokens=2", "--rate", "10/s", "--duration", "1s", "--suite", "suite.yaml",
                       "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    rows = _traced(_report(result)["tag"])
    sent = Counter(json.loads(r["request_json"])["messages"][0]["content"] for r in rows)
    assert sent == {"Say one": 5, "Say two": 5}


def test_a_load_test_keeps_more_calls_in_flight_to_one_origin_than_the_product_s_usual_pool(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with fake_server_process() as server:
        result = workbench("load", "fake/wide@ttft=4000,tokens=1", "--rate", "300/s", "--duration", "1s", "--prompt",
                           "hello", "--json", env={"WORKBENCH_FAKE_URL": server.base_url}, cwd=root)
        assert result.returncode == 0, result.stderr
        assert _report(result)["ok"] == 300
        with urllib.request.urlopen(f"{server.base_url}/_fake/log") as response:
            log = [e for e in json.load(response) if str(e["model"]).startswith("wide@")]
    # the most requests the server was answering at once (each from its arrival to its last token): past the 256
    # connections per origin of the product's usual pool, which would have held the rest back
    edges = sorted([(e["received_ns"], 1) for e in log] + [(e["last_token_ns"], -1) for e in log])
    assert len(log) == 300 and max(itertools.accumulate(step for _, step in edges)) > 256


# -- the policy under a provider's rate limit ------------------------------------------------------------------

RPM = 600  # 10 a second, a bucket of 10 that starts full


def test_at_1x_2x_and_3x_an_rpm_limit_429s_grow_and_the_policy_retries_after_retry_after(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "[policy.retry]\nmax_retries = 3\n[policy.breaker]\nenabled = false\n")
    with fake_server_process(extra_args=["--rpm", str(RPM)]) as server:
        env = {"WORKBENCH_FAKE_URL": server.base_url}
        results = {}
        for times in (1, 2, 3):
            _fake(server.base_url, "/_fake/reset", b"")
            result = workbench("load", "fake/limited@tokens=2", "--rate", f"{RPM * times}/m", "--duration", "2s",
                               "--prompt", "hello", "--json", env=env, cwd=root)
            assert result.returncode == 0, result.stderr
            report, limits = _report(result), _fake(server.base_url, "/_fake/limits")
            rows = _traced(report["tag"])
            assert report["calls"] == len(rows) == 20 * times
            # every 429 the server sent was seen, and every admitted request is a call that ended ok
            assert report["rate_limited"] == limits["rejected"] == _attempt_statuses(rows)[429]
            assert report["ok"] == limits["admitted"]
            # the policy waited as each 429 said (Retry-After), then tried again
            attempts = [a for r in rows for a in json.loads(r["attempts_json"])]
            after_429 = [b for r in rows for a, b in zip(json.loads(r["attempts_json"]),
                                                         json.loads(r["attempts_json"])[1:], strict=False)
                         if a["status"] == 429]
            assert all(b["kind"] == "retry" and b["wait_reason"] == "retry-after" for b in after_429)
            assert report["retries"] == sum(a["kind"] == "retry" for a in attempts) == len(after_429)
            # a call that failed ran out of retries on 429s
            assert all(r["error_class"] == "http_429" and r["attempt_count"] == 4 for r in rows if r["status"] != "ok")
            results[times] = report
        for times in (2, 3):  # the bucket admits at most 10 + 10 a second of sending: the rest is answered 429
            report = results[times]
            span = (report["sent"] - 1) / report["achieved_rate"]
            assert report["rate_limited"] >= report["calls"] - (RPM / 60) * (1 + span) - 2 > 0
        shares = [results[t]["rate_limited"] / results[t]["calls"] for t in (1, 2, 3)]
        assert shares[0] < shares[1] and shares[0] < shares[2]


def test_a_client_side_rate_limit_in_the_policy_queues_instead_of_drawing_429s(tmp_path: Path) -> None:
    root = _workspace(tmp_path, f"[policy.targets.fake.rate_limit]\nrpm = {RPM // 2}\n")
    with fake_server_process(extra_args=["--rpm", str(RPM)]) as server:
        result = workbench("load", "fake/limited@tokens=2", "--rate", "20/s", "--duration", "1s", "--prompt",
                           "hello", "--json", env={"WORKBENCH_FAKE_URL": server.base_url}, cwd=root)
        assert result.returncode == 0, result.stderr
        report = _report(result)
        assert report["rate_limited"] == _fake(server.base_url, "/_fake/limits")["rejected"] == 0
        assert report["ok"] == report["calls"] == 20
        assert report["queued"] > 0  # waited in the client's own bucket
        assert report["latency_ms"]["p99"] > report["latency_ms"]["p50"]


def test_at_3x_a_policy_with_a_fallback_serves_the_429s_elsewhere(tmp_path: Path) -> None:
    with fake_server_process(extra_args=["--rpm", str(RPM)]) as limited, fake_server_process() as spare:
        root = _workspace(tmp_path, f'[providers.spare]\nbase_url = "{spare.base_url}/v1"\n'
                                    '[policy]\nfallbacks = ["spare/quick@tokens=2"]\n'
                                    "[policy.retry]\nretry_after_cap_s = 0.0001\n[policy.breaker]\nenabled = false\n")
        result = workbench("load", "fake/limited@tokens=2", "--rate", f"{RPM * 3}/m", "--duration", "2s", "--prompt",
                           "hello", "--json", env={"WORKBENCH_FAKE_URL": limited.base_url}, cwd=root)
        assert result.returncode == 0, result.stderr
        report = _report(result)
        rows = _traced(report["tag"])
        rejected = _fake(limited.base_url, "/_fake/limits")["rejected"]
        # a 429 whose Retry-After (1 ms at least) is past the cap goes to the fallback at once: every call ends ok
        assert report["ok"] == report["calls"] == len(rows) == 60
        assert report["fell_back"] == sum(r["served_by"] == "spare/quick@tokens=2" for r in rows)
        assert report["fell_back"] == report["rate_limited"] == rejected > 0
        assert report["retries"] == 0


# -- interruption ---------------------------------------------------------------------------------------------

def test_ctrl_c_stops_sending_cancels_the_calls_in_flight_and_still_writes_the_report(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "load", "fake/slow@ttft=30000,tokens=2", "--rate",
                             "10/s", "--duration", "60s", "--prompt", "hello", "--report", "r.json"],
                            cwd=root, env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # a progress line: the run is under way, calls in flight
            if " sent " in line and " in flight 0 " not in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    report = json.loads((root / "r.json").read_text())
    assert report["stop_reason"] == "interrupted"
    rows = _traced(report["tag"])
    assert len(rows) == report["calls"] > 0
    assert report["errors"] == {"cancelled": report["calls"]} == dict(Counter(r["error_class"] for r in rows))
    assert "Traceback" not in err and "calls" in out


# -- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (("nope/model", "--rate", "5/s", "--prompt", "hello"), ("unknown provider 'nope'",)),
    (("fake/a", "--rate", "fast", "--prompt", "hello"), ("--rate", "fast", "50/s")),
    (("fake/a", "--rate", "0/s", "--prompt", "hello"), ("--rate", "0/s")),
    (("fake/a", "--rate", "5/fortnight", "--prompt", "hello"), ("--rate", "5/fortnight")),
    (("fake/a", "--rate", "5/s", "--duration", "soon", "--prompt", "hello"), ("--duration", "soon")),
    (("fake/a", "--rate", "5/s", "--duration", "2s", "--ramp", "3s", "--prompt", "hello"), ("--ramp",)),
    (("fake/a", "--concurrency", "2", "--ramp", "1s", "--prompt", "hello"), ("--ramp",)),
    (("fake/a", "--concurrency", "2", "--duration", "0s", "--prompt", "hello"), ("--duration", "more than 0")),
    (("fake/a", "--rate", "5/s", "--prompt", "hello", "--report", "r.pdf"), ("r.pdf", "report format")),
    (("fake/a", "--rate", "5/s", "--prompt", "nosuch"), ("nosuch",)),
    (("fake/a", "--rate", "5/s", "--from-traces", "colour=blue"), ("colour=blue",)),
    (("fake/a", "--rate", "5/s", "--from-traces", "all"), ("no trace log",)),
    (("fake/a", "--times", "3", "--suite", "suite.yaml"), ("--times",)),
    (("fake/a", "--rate", "5/s"), ("--from-traces", "--suite", "--prompt")),
    (("fake/a", "--prompt", "hello"), ("--rate", "--times", "--concurrency")),
    (("openai/gpt-4.1-mini", "--rate", "5/s", "--prompt", "hello"), ("no API key for openai",)),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    root = _workspace(tmp_path)
    refused(workbench("load", *args, cwd=root), *words)
    no_calls_traced()
