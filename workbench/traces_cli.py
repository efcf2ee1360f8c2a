"""``workbench traces list|show|search|stats|export|prune``: the headless twin of the trace browser."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_parser(sub: Any) -> None:
    traces = sub.add_parser("traces", help="browse, search, summarise, export and prune the trace log",
                            description="The trace log: every call, in a local SQLite store.")
    traces.add_argument("--db", metavar="PATH", help="the store (default: the workspace's, or WORKBENCH_TRACES)")
    actions = traces.add_subparsers(dest="traces_command", metavar="ACTION", required=True)

    def with_filters(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--provider")
        p.add_argument("--model", help="provider/model as called")
        p.add_argument("--status", choices=("ok", "error"))
        p.add_argument("--prompt", help="prompt name")
        p.add_argument("--prompt-version", type=int)
        p.add_argument("--tag")
        p.add_argument("--session")
        p.add_argument("--eval-run")
        p.add_argument("--since", help="ISO date/time, or an age such as 2h, 7d")
        p.add_argument("--until", help="ISO date/time, or an age such as 30m")
        p.add_argument("--min-cost", type=float, metavar="USD")
        p.add_argument("--min-latency-ms", type=float)
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        return p

    listing = with_filters(actions.add_parser("list", help="the newest calls, a page at a time"))
    listing.add_argument("-n", "--limit", type=int, default=50)
    listing.add_argument("--before", metavar="ID", help="the page after this id (keyset paging)")
    show = actions.add_parser("show", help="one call in full")
    show.add_argument("id", help="a call id (a unique prefix is enough)")
    show.add_argument("--json", action="store_true")
    search = with_filters(actions.add_parser("search", help="full-text search over prompts and replies"))
    search.add_argument("text")
    search.add_argument("-n", "--limit", type=int, default=50)
    stats = with_filters(actions.add_parser("stats", help="spend, calls, p50/p95 TTFT and latency per group"))
    stats.add_argument("--by", default="model",
                       choices=("day", "model", "provider", "prompt", "prompt-version", "tag", "status"))
    export = with_filters(actions.add_parser(
        "export", help="every matching call, as JSONL or CSV, or as OpenTelemetry spans to a collector",
        epilog="--otlp sends one span per call (OpenTelemetry GenAI conventions) to an OTLP/HTTP endpoint, e.g. "
               "http://localhost:4318 or Langfuse's https://HOST/api/public/otel; credentials go in "
               "OTEL_EXPORTER_OTLP_HEADERS (e.g. Authorization=Basic%20...). No prompt or reply text is sent "
               "without --otlp-content."))
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--out", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--otlp", metavar="URL",
                        help="send the calls as OTLP spans to this OTLP/HTTP endpoint (a base URL gets /v1/traces)")
    export.add_argument("--otlp-content", action="store_true",
                        help="with --otlp: include prompt and reply text (off by default: no text leaves the machine)")
    export.add_argument("--otlp-gzip", action="store_true", help="with --otlp: gzip the requests")
    export.add_argument("--otlp-timeout", type=float, default=10.0, metavar="S",
                        help="with --otlp: seconds to wait for each request (default 10)")
    export.add_argument("--otlp-batch", type=int, default=512, metavar="N",
                        help="with --otlp: spans per request (default 512)")
    prune = actions.add_parser("prune", help="delete calls older than a date or an age")
    prune.add_argument("--before", required=True, help="ISO date/time, or an age such as 30d")


def _moment(text: str | None) -> float | None:
    if text is None:
        return None
    match = _AGO.match(text.strip())
    if match:
        return time.time() - float(match[1]) * _UNIT_S[match[2]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WorkbenchError(f"'{text}' is neither a date nor an age",
                             "write 2026-11-01, 2026-11-01T12:00 or 7d") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _filters(args: argparse.Namespace) -> Any:
    from workbench.core.traces.store import Filters

    return Filters(provider=args.provider, model=args.model, status=args.status, prompt=args.prompt,
                   prompt_version=args.prompt_version, tag=args.tag, session=args.session, eval_run=args.eval_run,
                   since=_moment(args.since), until=_moment(args.until), min_cost=args.min_cost,
                   min_latency_ms=args.min_latency_ms)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {"id": row["id"], "time": datetime.fromtimestamp(row["ts"], UTC).isoformat(timespec="milliseconds"),
           **{k: v for k, v in row.items() if k not in ("id", "ts", "_cursor")}}
    out["prompt"] = out.pop("prompt_name", None)
    out["usage_estimated"] = bool(out.get("usage_estimated"))
    return out


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(_public(row), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("id", "time", "target", "status", "TTFT", "latency", "in/out", "USD"):
        table.add_column(name, no_wrap=name in ("id", "time"))
    for row in rows:
        public = _public(row)
        usd = "?" if row["cost_usd"] is None else f"{row['cost_usd']:.6f}"
        table.add_row(row["id"], public["time"][5:19].replace("T", " "), row["target"],
                      row["status"] if row["status"] == "ok" else f"[red]{row['error_class']}[/red]",
                      _ms(row["ttft_ms"]), _ms(row["latency_ms"]),
                      f"{row['input_tokens'] or 0}/{row['output_tokens'] or 0}", usd)
    Console().print(table)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def run(args: argparse.Namespace) -> int:
    from workbench.core.traces.store import TraceStore, default_path

    store = TraceStore(Path(args.db).expanduser() if args.db else default_path())
    try:
        action = args.traces_command
        if action == "list":
            _print_rows(store.page(_filters(args), args.before, args.limit), args.json)
        elif action == "search":
            _print_rows(store.search(args.text, _filters(args), limit=args.limit), args.json)
        elif action == "show":
            return _show(store, args.id, args.json)
        elif action == "stats":
            rows = store.stats(args.by, _filters(args))
            if args.json:
                for row in rows:
                    print(json.dumps(row))
            else:
                _print_stats(rows, args.by)
        elif action == "export":
            return _export(store, args)
        elif action == "prune":
            before = _moment(args.before)
            assert before is not None
            print(f"deleted {store.prune(before)} calls")
    finally:
        store.close()
    return 0


def _show(store: Any, call_id: str, as_json: bool) -> int:
    call = store.get(call_id)
    if call is None:
        raise WorkbenchError(f"no single call with id {call_id}", "copy an id from `workbench traces list`")
    payload = call.pop("payload") or {}
    chunks = payload.pop("chunk_ms", None) or b""
    import struct

    gaps = struct.unpack(f"<{len(chunks) // 4}f", chunks)
    detail = {**_public(call), "request": json.loads(payload["request_json"]) if payload.get("request_json") else None,
              "response": payload.get("response_text"), "reasoning": payload.get("reasoning_text"),
              "attempts": json.loads(payload.get("attempts_json") or "[]"), "chunk_ms": [round(g, 3) for g in gaps]}
    if as_json:
        print(json.dumps(detail, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty({k: v for k, v in detail.items() if k != "chunk_ms"}),
                    f"{len(gaps)} content chunks")
    return 0


def _print_stats(rows: list[dict[str, Any]], by: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in (by, "calls", "USD", "TTFT p50/p95", "latency p50/p95", "cache hit", "length", "errors"):
        table.add_column(name, justify="left" if name == by else "right")
    for row in rows:
        spend = "?" if row["spend_usd"] is None else f"{row['spend_usd']:.4f}"
        if row["unpriced_calls"]:
            spend += f" (+{row['unpriced_calls']} unpriced)"
        table.add_row(str(row[by]), str(row["calls"]), spend,
                      f"{_ms(row['ttft_p50_ms'])} / {_ms(row['ttft_p95_ms'])}",
                      f"{_ms(row['latency_p50_ms'])} / {_ms(row['latency_p95_ms'])}",
                      "–" if row["cache_hit_ratio"] is None else f"{row['cache_hit_ratio']:.0%}",
                      f"{row['length_share'] or 0:.0%}", f"{row['error_share'] or 0:.0%}")
    Console().print(table)


def _export(store: Any, args: argparse.Namespace) -> int:
    if args.otlp is not None:
        return _export_otlp(store, args)
    out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout  # noqa: SIM115
    try:
        rows = (_public(r) for r in store.export(_filters(args), with_payload=args.format == "jsonl"))
        if args.format == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer: Any = None
            for row in rows:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _export_otlp(store: Any, args: argparse.Namespace) -> int:
    if args.out:
        raise WorkbenchError("--otlp sends the calls to a collector; --out writes a file", "use one or the other")
    if args.otlp_batch < 1 or args.otlp_timeout <= 0:
        raise WorkbenchError("--otlp-batch and --otlp-timeout must be positive",
                             "e.g. --otlp-batch 512 --otlp-timeout 10")
    try:
        from workbench.core.traces import otlp
    except ImportError as exc:
        raise WorkbenchError(f"OTLP export needs a package that is missing ({exc.name})",
                             "pip install 'opentelemetry-proto>=1.45,<2'") from None
    import os

    try:
        result = otlp.export_store(store, _filters(args), args.otlp, content=args.otlp_content, gzip=args.otlp_gzip,
                                   timeout_s=args.otlp_timeout, batch_size=args.otlp_batch,
                                   headers=otlp.headers_from_env(os.environ))
    except otlp.OtlpExportError as exc:
        hint = f" — {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return 1
    if result.requests == 0:
        print(f"no calls match: nothing was sent to {result.url}")
        return 0
    rejected = f", {result.rejected} rejected ({result.message or 'no reason given'})" if result.rejected else ""
    text = "" if args.otlp_content else " (no prompt or reply text; add --otlp-content to include it)"
    requests = f"{result.requests} request{'' if result.requests == 1 else 's'}"
    print(f"sent {result.spans} spans to {result.url} in {requests}{rejected}{text}")
    return 1 if result.rejected else 0
