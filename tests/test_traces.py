"""The trace log: rows with every field, failed calls with attempts, redaction, no headers, crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.core.call_record import CallRecord
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.race import Race
from workbench.core.request import ChatRequest, Params
from workbench.core.resilience.caller import Caller
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.ids import id_time, new_id
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore, default_path
from workbench.core.traces.writer import TraceWriter
from workbench.fakeserver.process import FakeServerProcess

CANARY = "sk-canary-trace-1234567890abcdefQZXW"


async def race(targets: list[str], env: dict[str, str], prompt: str = "Trace me, please.",
               policies: PolicySet | None = None) -> list[CallRecord]:
    request = ChatRequest.from_prompt(prompt, system="Be brief.", params=Params(max_tokens=50, temperature=0.2))
    async with new_client() as client:
        return await Race(request, targets, env, policies).run(Caller(client))


def store_with(records: list[CallRecord], path: Path, context: CallContext | None = None,
               redactor: Redactor | None = None) -> tuple[TraceStore, list[str]]:
    writer = TraceWriter(path, redactor)
    ids = [writer.write(r, context or CallContext()) for r in records]
    writer.close()
    return TraceStore(path), ids


async def test_a_raced_call_lands_with_every_field(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OPENAI_API_KEY": CANARY}
    [record] = await race(["openai/gpt-4.1-mini@tokens=6,tps=200"], env)
    context = CallContext(prompt_name="greeter", prompt_version=3, session_id="s1", eval_run_id="e1",
                          tags=("demo", "nightly"))
    store, [call_id] = store_with([record], tmp_path / "t.db", context)
    row = store.get(call_id)
    assert row is not None
    assert (row["provider"], row["model"], row["target"], row["served_by"]) == (
        "openai", "gpt-4.1-mini@tokens=6,tps=200", "openai/gpt-4.1-mini@tokens=6,tps=200",
        "openai/gpt-4.1-mini@tokens=6,tps=200")
    assert (row["prompt_name"], row["prompt_version"], row["session_id"], row["eval_run_id"]) == (
        "greeter", 3, "s1", "e1")
    assert sorted(row["tags"]) == ["demo", "nightly"]
    assert (row["status"], row["finish_reason"], row["finish_raw"], row["error"]) == ("ok", "stop", "stop", None)
    assert row["input_tokens"] > 0 and row["output_tokens"] == 6 and row["usage_estimated"] == 0
    assert row["cost_usd"] == pytest.approx(float(record.cost_usd)) and row["cost_usd"] > 0  # type: ignore[arg-type]
    assert row["ttft_ms"] == pytest.approx(record.timing.ttft_ms) and row["latency_ms"] > row["ttft_ms"]
    assert row["tokens_per_s"] > 0 and row["attempt_count"] == 1 and row["request_id"].startswith("chatcmpl") is False
    assert abs(row["ts"] - id_time(call_id)) < 0.002
    payload = row["payload"]
    request = json.loads(payload["request_json"])
    assert request["system"] == "Be brief." and request["messages"][0]["content"] == "Trace me, please."
    assert request["params"] == {"max_tokens": 50, "temperature": 0.2}
    assert payload["response_text"] == record.text
    assert len(payload["chunk_ms"]) == 4 * len(record.timing.chunk_ns)
    assert [a["kind"] for a in json.loads(payload["attempts_json"])] == ["first"]


async def test_a_failed_call_keeps_its_attempts(fake_env: dict[str, str], tmp_path: Path) -> None:
    policies = PolicySet().with_defaults(retry={"max_retries": 1, "base_s": 0.01, "cap_s": 0.01})
    [record] = await race(["fake-gemini/down@status=503,fail=9,id=trace-fail"], fake_env, policies=policies)
    store, [call_id] = store_with([record], tmp_path / "t.db")
    row = store.get(call_id)
    assert row is not None
    assert (row["status"], row["error_class"], row["attempt_count"], row["finish_reason"]) == (
        "error", "http_503", 2, "error")
    assert "503" in row["error"]
    attempts = json.loads(row["payload"]["attempts_json"])
    assert [(a["kind"], a["status"]) for a in attempts] == [("first", 503), ("retry", 503)]
    assert attempts[1]["wait_ms"] > 0 and attempts[1]["wait_reason"] == "backoff"


async def test_redaction_rules_and_metadata_only_mode(fake_env: dict[str, str], tmp_path: Path) -> None:
    prompt = "Mail jane.doe@example.com, card 4111 1111 1111 1111, order ZX-99812."
    [record] = await race(["fake/r@tokens=3"], fake_env, prompt)
    redactor = Redactor.build(custom={"order": r"ZX-\d+"})
    store, [call_id] = store_with([record], tmp_path / "r.db", redactor=redactor)
    stored = store.get(call_id)["payload"]["request_json"]  # type: ignore[index]
    assert "jane.doe" not in stored and "4111" not in stored and "ZX-99812" not in stored
    assert "[redacted:email]" in stored and "[redacted:card]" in stored and "[redacted:order]" in stored
    bare, [bare_id] = store_with([record], tmp_path / "m.db", redactor=Redactor.build(metadata_only=True))
    row = bare.get(bare_id)
    assert row is not None and row["output_tokens"] == 3 and row["ttft_ms"] is not None
    assert row["payload"]["request_json"] is None and row["payload"]["response_text"] is None


async def test_no_request_header_or_key_is_stored(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OPENAI_API_KEY": CANARY}
    records = await race(["openai/gpt-4o@tokens=3", "openai/gpt-4o@status=401,fail=9,id=trace-401"], env)
    path = tmp_path / "k.db"
    store_with(records, path)[0].close()
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("k.db"))  # noqa: ASYNC240
    assert CANARY.encode() not in written and b"QZXW" not in written
    assert b"authorization" not in written.lower() and b"bearer" not in written.lower()


def test_store_is_private_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "t.db"
    store = TraceStore(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_default_location(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    assert default_path(tmp_path / "sub", {}) == tmp_path / ".workbench" / "traces.db"
    assert default_path(tmp_path, {"WORKBENCH_TRACES": "/x/y.db"}) == Path("/x/y.db")
    assert default_path(Path("/"), {}).name == "traces.db"  # the user data dir


def synthetic(n: int, start: float) -> list[CallRecord]:
    from workbench.core.events import FinishReason, Usage

    records = []
    for i in range(n):
        record = CallRecord(f"{'openai' if i % 2 else 'anthropic'}/m{i % 3}",
                            ChatRequest.from_prompt(f"question number {i} about {'apples' if i % 5 else 'pears'}"))
        record.started_at = start + i
        record.text_parts = [f"answer {i}"]
        record.usage = Usage(input_tokens=100, output_tokens=10 + i, cache_read_tokens=50 if i % 4 == 0 else 0)
        record.finish = FinishReason.LENGTH if i % 10 == 0 else FinishReason.STOP
        record.timing.started_ns, record.timing.sent_ns = 0, 0
        record.timing.first_content_ns, record.timing.end_ns = (i + 1) * 1_000_000, (i + 10) * 1_000_000
        record.cost_usd = None if i % 7 == 0 else __import__("decimal").Decimal("0.001")
        records.append(record)
    return records


def test_pages_filters_search_stats_export_prune(tmp_path: Path) -> None:
    start = time.time() - 1000
    records = synthetic(60, start)
    store, ids = store_with(records, tmp_path / "q.db", CallContext(tags=("batch",)))
    first = store.page(limit=25)
    second = store.page(before=first[-1]["id"], limit=25)
    third = store.page(before=second[-1]["id"], limit=25)
    assert [r["id"] for r in first + second + third] == sorted(ids, reverse=True)
    assert all(r["target"] == "openai/m1" for r in store.page(Filters(model="openai/m1")))
    assert len(store.page(Filters(provider="anthropic"), limit=100)) == 30
    assert len(store.page(Filters(since=start + 50), limit=100)) == 10
    assert len(store.page(Filters(min_latency_ms=50), limit=100)) == 20
    assert len(store.page(Filters(tag="batch"), limit=100)) == 60 and store.page(Filters(tag="none")) == []
    found = store.search("pears")
    assert len(found) == 12 and found[0]["id"] > found[-1]["id"]  # newest first
    assert len(store.search("pears", before=found[4]["_cursor"])) == 7
    by_model = {r["model"]: r for r in store.stats("model")}
    assert sum(r["calls"] for r in by_model.values()) == 60
    m0 = by_model["anthropic/m0"]
    assert m0["ttft_p50_ms"] is not None and m0["ttft_p95_ms"] >= m0["ttft_p50_ms"]
    assert 0 < m0["cache_hit_ratio"] < 1 and m0["length_share"] > 0 and m0["unpriced_calls"] >= 1
    assert len(list(store.export())) == 60 and "response_text" in next(store.export())
    assert store.prune(start + 30) == 30
    assert len(store.page(limit=100)) == 30 and len(store.search("pears")) == 6
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_ids_sort_by_time() -> None:
    ids = [new_id() for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert abs(id_time(new_id(1_700_000_000.123)) - 1_700_000_000.123) < 0.001


WRITER_SCRIPT = """
import sys, time
from collections.abc import Callable
from pathlib import Path
from tests.test_traces import synthetic
from workbench.core.traces.writer import TraceWriter
writer = TraceWriter(Path(sys.argv[1]))
records = synthetic(200, time.time())
while True:
    for record in records:
        writer.write(record)
    writer.flush()
    print(writer.written, flush=True)
"""


def test_kill_9_mid_write_keeps_every_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    committed = [int(proc.stdout.readline()) for _ in range(5)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert rows >= committed[-1] > 0
    assert conn.execute("SELECT count(*) FROM payloads").fetchone()[0] == rows


def test_prompt_and_provider_filters_merge_their_index_ranges(tmp_path: Path) -> None:
    start = time.time() - 1000
    records = synthetic(60, start)
    for i, record in enumerate(records):
        record.target = ("solo", "openai/a", "openai/b", "open/c", "anthropic/d")[i % 5]
    writer = TraceWriter(tmp_path / "m.db")
    contexts = [CallContext(prompt_name="p" if i % 3 else "q", prompt_version=(None, 1, 2, 7)[i % 4])
                for i in range(60)]
    ids = [writer.write(r, c) for r, c in zip(records, contexts, strict=True)]
    writer.close()
    store = TraceStore(tmp_path / "m.db")
    newest_first = sorted(zip(ids, records, contexts, strict=True), reverse=True)

    def expect(keep: Callable[[CallRecord, CallContext], bool], before: str | None = None) -> list[str]:
        return [i for i, r, c in newest_first if keep(r, c) and (before is None or i < before)][:7]

    for filters, keep in (
            (Filters(prompt="p"), lambda r, c: c.prompt_name == "p"),
            (Filters(prompt="p", status="ok"), lambda r, c: c.prompt_name == "p"),
            (Filters(provider="openai"), lambda r, c: r.target.startswith("openai/")),
            (Filters(provider="solo"), lambda r, c: r.target == "solo"),
            (Filters(provider="open"), lambda r, c: r.target == "open/c"),
            (Filters(provider="openai", prompt="q"),
             lambda r, c: r.target.startswith("openai/") and c.prompt_name == "q")):
        first = store.page(filters, limit=7)
        assert [r["id"] for r in first] == expect(keep), filters
        assert [r["id"] for r in store.page(filters, before=first[-1]["id"], limit=7)] == expect(keep, first[-1]["id"])
    assert store.page(Filters(prompt="none")) == [] and store.page(Filters(provider="none")) == []
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"calls_provider", "calls_status", "calls_prompt_name"}.isdisjoint(names)
