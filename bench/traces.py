"""The trace log at a million calls: write rate, FTS catch-up, keyset pages, filters, search, stats.

Generates a realistic store through the real :class:`TraceWriter` (synthetic calls: ~20 targets,
~30 prompts with versions, tags, ~2% errors, log-normal token counts and timings, 60 days of
timestamps, short prompts and replies drawn from a Zipf vocabulary so full-text search has rare,
mid and common terms), then times the queries the trace browser and ``workbench traces`` run.

    python -m bench.traces [--rows 1000000] [--db PATH] [--batch 100] [--samples 200]

An existing ``--db`` with enough rows is reused (generation is skipped; each run adds a 20k-call
burst). Targets (the issue's): writes ≥ 20k calls/s, keyset page and indexed filter p99 ≤ 5 ms,
FTS first page p99 ≤ 50 ms, aggregates (``TraceStore.stats``) ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from workbench.core.call_record import CallRecord
from workbench.core.errors import ProviderHTTPError, ProviderTimeoutError
from workbench.core.events import FinishReason, Usage
from workbench.core.request import ChatRequest, Params
from workbench.core.traces import rollup
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.store import TraceStore, index_pending
from workbench.core.traces.writer import TraceWriter

DAYS = 60
VOCABULARY = 200_000
CHUNK = 25_000

# (target, weight, median TTFT ms, tokens/s, USD per 1M input, per 1M output; None = unpriced)
TARGETS: list[tuple[str, float, float, float, tuple[float, float] | None]] = [
    ("openai/gpt-4.1-mini", 14, 380, 90, (0.4, 1.6)), ("openai/gpt-4.1", 8, 520, 70, (2.0, 8.0)),
    ("openai/gpt-4o", 5, 450, 80, (2.5, 10.0)), ("openai/gpt-4o-mini", 6, 350, 95, (0.15, 0.6)),
    ("openai/o4-mini", 4, 2600, 120, (1.1, 4.4)), ("openai/gpt-4.1-nano", 3, 250, 140, (0.1, 0.4)),
    ("anthropic/claude-sonnet-4", 10, 900, 60, (3.0, 15.0)), ("anthropic/claude-3-5-haiku", 6, 600, 85, (0.8, 4.0)),
    ("anthropic/claude-opus-4", 2, 1500, 35, (15.0, 75.0)), ("gemini/gemini-2.5-flash", 9, 420, 180, (0.3, 2.5)),
    ("gemini/gemini-2.5-pro", 4, 1800, 90, (1.25, 10.0)), ("gemini/gemini-2.0-flash-lite", 2, 300, 200, (0.075, 0.3)),
    ("mistral/mistral-large", 2, 700, 50, (2.0, 6.0)), ("mistral/mistral-small", 2, 400, 110, (0.1, 0.3)),
    ("groq/llama-3.3-70b", 3, 180, 280, (0.59, 0.79)), ("deepseek/deepseek-chat", 2, 1100, 40, (0.27, 1.1)),
    ("openrouter/qwen-2.5-72b", 1, 900, 45, None), ("vllm/llama-3.1-8b", 3, 60, 160, None),
    ("ollama/qwen2.5:7b", 2, 120, 45, None), ("llamacpp/phi-4-q4", 1, 90, 30, None),
]
TAGS = ["prod", "nightly", "eval", "demo", "regression", "ab-test", "canary", "batch", "support", "summarise",
        "extract", "translate"]
TAG_WEIGHTS = [30, 12, 20, 3, 6, 4, 2, 8, 9, 5, 4, 2]


def _word(rank: int) -> str:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    out, n = [], rank + 7
    while n:
        n, a = divmod(n, 16)
        n, b = divmod(n, 5)
        out.append(consonants[a] + vowels[b])
    return "".join(out)


class Generator:
    """Deterministic synthetic calls, oldest first, spread over ``DAYS`` days ending now."""

    def __init__(self, rows: int, seed: int = 7) -> None:
        self.rows = rows
        self.rng = random.Random(seed)
        self.end = time.time()
        self.start = self.end - DAYS * 86_400
        self.words = [_word(r) for r in range(VOCABULARY)]
        self.word_cum = list(itertools.accumulate(1 / (r + 1) ** 1.07 for r in range(VOCABULARY)))
        self.target_cum = list(itertools.accumulate(t[1] for t in TARGETS))
        rng = self.rng
        # 30 prompts, each used with 2-4 targets and 1-3 versions (the newest used most).
        self.prompts = [(f"prompt-{name}", rng.randint(1, 3), rng.sample(range(len(TARGETS)), rng.randint(2, 4)))
                        for name in ("greeter", "summarise", "classify", "extract", "translate", "sql", "qa", "rag",
                                     "triage", "title", "tagger", "rewrite", "critic", "judge", "planner", "coder",
                                     "review", "support", "faq", "email", "tweet", "outline", "headline", "intent",
                                     "ner", "sentiment", "router", "moderate", "persona", "distil")]
        self.prompt_cum = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(self.prompts))))
        self.tag_cum = list(itertools.accumulate(TAG_WEIGHTS))

    def text(self, low: int, high: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.word_cum, k=self.rng.randint(low, high)))

    def record(self, i: int) -> tuple[CallRecord, CallContext]:
        rng = self.rng
        if rng.random() < 0.15:  # an ad-hoc call: no prompt
            target_index, prompt, version = rng.choices(range(len(TARGETS)), cum_weights=self.target_cum)[0], None, None
        else:
            name, versions, used_with = rng.choices(self.prompts, cum_weights=self.prompt_cum)[0]
            prompt, version = name, max(1, versions - (rng.random() < 0.2) - (rng.random() < 0.05))
            target_index = rng.choice(used_with)
        target, _, ttft_median, tps, price = TARGETS[target_index]
        record = CallRecord(target, ChatRequest.from_prompt(self.text(6, 30), system="Be brief.",
                                                            params=Params(max_tokens=1024)))
        record.started_at = self.start + (i + rng.random()) * (self.end - self.start) / self.rows
        input_tokens = int(rng.lognormvariate(math.log(700), 0.9)) + 5
        output_tokens = int(rng.lognormvariate(math.log(180), 0.8)) + 1
        ttft = rng.lognormvariate(math.log(ttft_median), 0.45)
        latency = ttft + output_tokens / rng.lognormvariate(math.log(tps), 0.25) * 1000
        record.timing.started_ns = record.timing.sent_ns = 0
        if rng.random() < 0.02:
            record.error = (ProviderHTTPError(target, rng.choice((429, 500, 503, 529)), None, "upstream said no")
                            if rng.random() < 0.8 else ProviderTimeoutError(target, "first-token"))
            record.finish = FinishReason.ERROR
            record.timing.end_ns = int(ttft * 1e6 * rng.uniform(0.5, 3))
        else:
            cached = int(input_tokens * rng.uniform(0.3, 0.9)) if rng.random() < 0.25 else 0
            length = rng.random() < 0.04
            output_tokens = 1024 if length else min(output_tokens, 1023)
            record.usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached)
            record.finish = FinishReason.LENGTH if length else FinishReason.STOP
            record.finish_raw = "length" if length else "stop"
            record.timing.first_content_ns = int(ttft * 1e6)
            record.timing.end_ns = int(latency * 1e6)
            record.text_parts = [self.text(12, 60)]
            if price is not None:
                record.cost_usd = Decimal(str(round((input_tokens * price[0] + output_tokens * price[1]) / 1e6, 9)))
        record.done = True
        tags = tuple(sorted(set(rng.choices(TAGS, cum_weights=self.tag_cum, k=rng.choice((0, 1, 1, 2))))))
        context = CallContext(prompt_name=prompt, prompt_version=version, tags=tags,
                              session_id=f"s{i // 40}" if rng.random() < 0.3 else None,
                              eval_run_id=f"run-{i // 5000}" if "eval" in tags else None)
        return record, context


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


class Report:
    def __init__(self) -> None:
        self.verdicts: list[tuple[str, bool, str]] = []

    def row(self, label: str, times: list[float], target_ms: float | None = None, quantile: float = 99) -> float:
        p50, p99 = _pct(times, 50), _pct(times, 99)
        worst = _pct(times, quantile)
        mark = "" if target_ms is None else ("  met" if worst <= target_ms else "  NOT met")
        print(f"  {label:46s} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(times)}){mark}", flush=True)
        return worst

    def verdict(self, name: str, ok: bool, detail: str) -> None:
        self.verdicts.append((name, ok, detail))


def generate(path: Path, rows: int, batch: int) -> dict[str, float]:
    """Write ``rows`` calls through a TraceWriter, then catch the rollups and the full-text index up."""
    gen = Generator(rows)
    # The rollups and FTS are measured on their own (the writer runs them when idle)
    writer = TraceWriter(path, max_batch=batch, catch_up=False)
    writing = 0.0
    try:
        for begin in range(0, rows, CHUNK):
            chunk = [gen.record(i) for i in range(begin, min(begin + CHUNK, rows))]  # made outside the timing
            start = time.perf_counter()
            for record, context in chunk:
                writer.write(record, context)
            writer.flush()
            writing += time.perf_counter() - start
            done = begin + len(chunk)
            print(f"\r  written {done:>9,} calls  {done / writing:,.0f} calls/s", end="", flush=True)
        print()
    finally:
        writer.close()
    store = TraceStore(path)
    start = time.perf_counter()
    rolled = rollup.roll_pending(store.conn)
    rollup_s = time.perf_counter() - start
    indexed = index_pending(store.conn, batch=2_000)
    fts_s = time.perf_counter() - start - rollup_s
    store.close()
    return {"write_rate": rows / writing, "rollup_rate": rolled / rollup_s if rollup_s else 0.0,
            "rollup_s": rollup_s, "fts_rate": indexed / fts_s if fts_s else 0.0, "fts_s": fts_s,
            "all_work_rate": rows / (writing + rollup_s + fts_s)}


def burst(path: Path, calls: int, batch: int) -> dict[str, float]:
    """A burst of ``calls`` new calls into the big store through a normal writer (idle FTS indexing on):
    the write rate, and how long after the last commit search sees the last call."""
    gen = Generator(calls, seed=11)
    gen.start, gen.end = time.time() - 60, time.time()
    chunk = [gen.record(i) for i in range(calls)]
    writer = TraceWriter(path, max_batch=batch)
    start = time.perf_counter()
    for record, context in chunk:
        writer.write(record, context)
    writer.flush()
    written = time.perf_counter()
    conn = sqlite3.connect(path)
    top = conn.execute("SELECT max(rowid) FROM payloads").fetchone()[0]
    while conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0] < top:
        time.sleep(0.01)
    caught_up = time.perf_counter()
    conn.close()
    writer.close()
    return {"rate": calls / (written - start), "lag_s": caught_up - written}


def write_breakdown(rows: int = 20_000) -> dict[str, float]:
    """µs per call of each part of the writer's work (one thread, no queue), on a fresh store."""
    from workbench.core.traces.ids import new_id
    from workbench.core.traces.redact import Redactor
    from workbench.core.traces.store import connect
    from workbench.core.traces.writer import _INSERT_CALL, _INSERT_PAYLOAD, _INSERT_TAG, rows_for

    gen, redactor = Generator(rows * 50, seed=3), Redactor.build()
    items = [gen.record(i) for i in range(rows)]
    parts = dict.fromkeys(("new_id", "rows_for", "sqlite insert + commit", "rollups (idle catch-up)"), 0.0)
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "b.db")
        for begin in range(0, rows, 100):
            t0 = time.perf_counter()
            ids = [new_id(record.started_at) for record, _ in items[begin:begin + 100]]
            t1 = time.perf_counter()
            made = [rows_for(r, c, redactor, i) for (r, c), i in zip(items[begin:begin + 100], ids, strict=True)]
            t2 = time.perf_counter()
            calls, tags = [m[0] for m in made], [t for m in made for t in m[2]]
            with conn:
                conn.executemany(_INSERT_CALL, calls)
                conn.executemany(_INSERT_PAYLOAD, [m[1] for m in made])
                conn.executemany(_INSERT_TAG, tags)
            t3 = time.perf_counter()
            for name, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2), strict=False):
                parts[name] += spent
        t4 = time.perf_counter()
        rollup.roll_pending(conn)  # as the idle writer does, thousands of calls a step
        parts["rollups (idle catch-up)"] = time.perf_counter() - t4
        conn.close()
    return {name: spent / rows * 1e6 for name, spent in parts.items()}


def queries(path: Path, report: Report, samples: int) -> None:
    store = TraceStore(path)
    conn = store.conn
    rng = random.Random(5)
    total = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    ids = [r[0] for r in conn.execute("SELECT id FROM calls WHERE abs(random()) % ? = 0", (max(total // 5000, 1),))]
    newest = conn.execute("SELECT max(ts) FROM calls").fetchone()[0]
    oldest = conn.execute("SELECT min(ts) FROM calls").fetchone()[0]

    def pages(filters: Filters, deep: bool = True) -> list[float]:
        return [_timed(lambda: store.page(filters, before=rng.choice(ids) if deep else None, limit=50))
                for _ in range(samples)]

    print("\nKeyset pages (50 rows) at random depths, and indexed filters (target p99 <= 5 ms)")
    worst = [report.row("newest page", pages(Filters(), deep=False), 5),
             report.row("page at a random depth", pages(Filters()), 5)]
    popular, rare = TARGETS[0][0], TARGETS[-1][0]
    prompt = "prompt-greeter"
    cases = [("model (20% of calls)", Filters(model=popular)), ("model (0.1% of calls)", Filters(model=rare)),
             ("provider", Filters(provider="anthropic")), ("status=error (2%)", Filters(status="error")),
             ("prompt", Filters(prompt=prompt)), ("prompt + version", Filters(prompt=prompt, prompt_version=1)),
             ("tag (common)", Filters(tag="prod")), ("tag (rare)", Filters(tag="canary")),
             ("model + status=error", Filters(model=popular, status="error"))]
    for label, filters in cases:
        worst.append(report.row(label, pages(filters), 5))
    windows = []
    for _ in range(samples):
        since = rng.uniform(oldest, newest - 86_400)
        windows.append(_timed(partial(store.page, Filters(since=since, until=since + 86_400))))
    worst.append(report.row("time range (a random 1-day window)", windows, 5))
    since_7d = [_timed(lambda: store.page(Filters(since=newest - 7 * 86_400), before=rng.choice(ids[-700:])))
                for _ in range(samples)]
    worst.append(report.row("since 7 days, random depth within it", since_7d, 5))
    report.verdict("keyset page / indexed filter p99 <= 5 ms", max(worst) <= 5, f"worst p99 {max(worst):.2f} ms")

    print("\nFull-text search, first page, newest first (target p99 <= 50 ms)")
    counts = {}
    for rank in (0, 3, 30, 300, 1_000, 3_000, 30_000, 100_000, 150_000, 199_000):
        counts[rank] = conn.execute("SELECT count(*) FROM payloads_fts WHERE payloads_fts MATCH ?",
                                    (json.dumps(_word(rank)),)).fetchone()[0]
    print("  documents matching, by vocabulary rank: "
          + ", ".join(f"{rank}: {n:,}" for rank, n in counts.items()))
    worst = []
    for label, ranks in (("common terms (ranks 0-10)", range(0, 10)), ("mid terms (ranks 300-3000)", range(300, 3000)),
                         ("rare terms (ranks 100k-200k)", range(100_000, 199_999))):
        words = [_word(rng.choice(ranks)) for _ in range(samples)]
        worst.append(report.row(label, [_timed(partial(store.search, w)) for w in words], 50))
    pairs = [f"{_word(rng.randrange(10))} {_word(rng.randrange(300, 3000))}" for _ in range(samples)]
    worst.append(report.row("common AND mid", [_timed(partial(store.search, w)) for w in pairs], 50))
    with_model = [_timed(lambda: store.search(_word(rng.randrange(300, 3000)), Filters(model=rare)))
                  for _ in range(samples)]
    worst.append(report.row("mid term + rare model filter", with_model, 50))
    report.verdict("FTS first page p99 <= 50 ms", max(worst) <= 50, f"worst p99 {max(worst):.2f} ms")

    print("\nstats(by) from the rollups (target <= 50 ms; p99 shown) vs the exact query over calls")
    worst = []
    week = Filters(since=newest - 7 * 86_400)
    for by in ("day", "model", "provider", "prompt", "prompt-version", "tag", "status"):
        times = [_timed(partial(store.stats, by)) for _ in range(max(samples // 10, 5))]
        worst.append(report.row(f"stats(by={by})", times, 50))
    variants = [("model", Filters(status="ok"), "by=model, status=ok"),
                ("model", week, "by=model, since 7 days (sub-day edge)"),
                ("day", Filters(model=popular), "by=day, model=..."),
                ("prompt", Filters(since=newest - 30 * 86_400), "by=prompt, since 30 days"),
                ("day", Filters(tag="eval"), "by=day, tag=eval")]
    for by, filters, label in variants:
        times = [_timed(partial(store.stats, by, filters))
                 for _ in range(max(samples // 10, 5))]
        worst.append(report.row(label, times, 50))
    for by, filters, label in (("model", Filters(), "exact: by=model"), ("tag", Filters(), "exact: by=tag"),
                               ("model", week, "exact: by=model, since 7 days"),
                               ("model", Filters(min_cost=0.01), "fallback: by=model, min_cost (exact)")):
        times = [_timed(partial(store.exact_stats, by, filters)) for _ in range(3)]
        report.row(label, times)
    report.verdict("aggregates (stats) <= 50 ms", max(worst) <= 50, f"worst p99 {max(worst):.2f} ms")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="the store to build or reuse (default: a temporary one)")
    parser.add_argument("--batch", type=int, default=100, help="the writer's max_batch (its default: 100)")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp(prefix="wb-traces-")) / "traces.db"
    report = Report()
    existing = 0
    if path.exists():
        conn = sqlite3.connect(path)
        existing = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        conn.close()
    if existing >= args.rows:
        print(f"Reusing {path} ({existing:,} calls); delete it to measure the writes.")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        print(f"Generating {args.rows:,} calls into {path} (writer max_batch={args.batch})")
        start = time.perf_counter()
        figures = generate(path, args.rows, args.batch)
        print(f"  sustained write rate: {figures['write_rate']:,.0f} calls/s (rollups and FTS deferred)")
        print(f"  rollup catch-up: {figures['rollup_rate']:,.0f} calls/s ({figures['rollup_s']:.1f} s for all)")
        print(f"  FTS catch-up: {figures['fts_rate']:,.0f} documents/s ({figures['fts_s']:.1f} s for all)")
        print(f"  all the work (writes, rollups, FTS): {figures['all_work_rate']:,.0f} calls/s")
        print(f"  generated in {time.perf_counter() - start:.0f} s")
        report.verdict("write rate >= 20k calls/s", figures["write_rate"] >= 20_000,
                       f"{figures['write_rate']:,.0f} calls/s")
    size = sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists())
    print(f"  store size: {size / 1e9:.2f} GB ({size / max(existing, args.rows):.0f} B per call)")
    print("\nWriter work per call, single thread, fresh store (µs):")
    print("  " + ", ".join(f"{name} {us:.1f}" for name, us in write_breakdown().items()))
    result = burst(path, 20_000, args.batch)
    print(f"\nA burst of 20,000 calls into the big store: {result['rate']:,.0f} calls/s; the full-text index "
          f"caught up {result['lag_s']:.2f} s after the last commit")
    report.verdict("FTS lag after a 20k burst <= 5 s", result["lag_s"] <= 5, f"{result['lag_s']:.2f} s")
    queries(path, report, args.samples)
    print("\nTargets")
    for name, ok, detail in report.verdicts:
        print(f"  {'met    ' if ok else 'NOT met'}  {name}: {detail}")


if __name__ == "__main__":
    main()
