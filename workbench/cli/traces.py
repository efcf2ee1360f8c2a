"""``workbench traces list|tail|show|search|stats|export|prune|check|recover``: the headless twin of the trace browser,
and the check and recovery of a damaged store."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.cli._shared import console, settings
from workbench.core.errors import ConfigError, WorkbenchError
from workbench.figures import ms as _ms
from workbench.figures import ms_pair, share, usd


def _moment(text: str | None) -> float | None:
    from workbench.core.traces.filters import moment

    return None if text is None else moment(text)


def _filters(args: argparse.Namespace) -> Any:
    from workbench.core.traces.filters import Filters

    return Filters(provider=args.provider, model=args.model, status=args.status, prompt=args.prompt,
                   prompt_version=args.prompt_version, tag=args.tag, session=args.session, eval_run=args.eval_run,
                   since=_moment(args.since), until=_moment(args.until), min_cost=args.min_cost,
                   min_latency_ms=args.min_latency_ms)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {"id": row["id"], "time": datetime.fromtimestamp(row["ts"], UTC).isoformat(timespec="milliseconds"),
           **{k: v for k, v in row.items() if k not in ("id", "ts") and not k.startswith("_")}}
    out["prompt"] = out.pop("prompt_name", None)
    out["usage_estimated"] = bool(out.get("usage_estimated"))
    return out


def _print_rows(rows: list[dict[str, Any]], as_json: bool, *, team: bool = False) -> None:
    """The calls as ``list`` and ``search`` print them; from the team store (``team``) with who pushed each (the
    ``user`` and ``host`` keys with ``--json``, a ``pushed by`` column in the table)."""
    if as_json:
        for row in rows:
            print(json.dumps(_public(row), ensure_ascii=False))
        return
    if not rows:  # said on stderr: a pipe reading the table gets nothing rather than a header alone
        print("workbench: no calls match", file=sys.stderr)
        return
    from rich.text import Text

    from workbench.cli.render import Target, new_table, print_table
    from workbench.cli.team_reads import pushed_by

    columns = (*_COLUMNS[:2], "pushed by", *_COLUMNS[2:]) if team else _COLUMNS
    table = new_table(*columns, numbers=_NUMBERS, whole=("id", "time"))
    for row in rows:
        cells = _cells(row)
        who = [Text(pushed_by(row["user"], row["host"]))] if team else []
        table.add_row(*cells[:2], *who, Target(cells[2]), *cells[3:])
    print_table(table, console())


_NUMBERS = ("TTFT", "latency", "in/out", "USD")
_COLUMNS = ("id", "time", "target", "status", *_NUMBERS)


def _cells(row: dict[str, Any]) -> list[str]:
    """A call's cells in the table of ``list``, ``search`` and ``tail`` (:data:`_COLUMNS`; the status in markup)."""
    return [row["id"], _public(row)["time"][5:19].replace("T", " "), row["target"],
            row["status"] if row["status"] == "ok" else f"[red]{row['error_class']}[/red]",
            _ms(row["ttft_ms"]), _ms(row["latency_ms"]), f"{row['input_tokens'] or 0}/{row['output_tokens'] or 0}",
            usd(row["cost_usd"])]


_TAIL_WIDTHS = (26, 14, 28, 12, 8, 8, 11, 9)
"""Each column's width in ``tail``'s lines (rows come one at a time, so no table measures them)."""


def _tail(store: Any, args: argparse.Namespace) -> int:
    """Each call as it is written, until Ctrl-C (exit 0): a line under the ``list`` table's header, or with
    ``--json`` one JSON object per line; ``--last N`` prints the last N calls first."""
    from rich.markup import escape

    from workbench.core.errors import printable
    from workbench.core.traces.follow import follow

    out = console()
    print(f"workbench: following {store.path} (Ctrl-C stops)", file=sys.stderr, flush=True)
    if not args.json:
        out.print(_tail_line(list(_COLUMNS)), style="bold", markup=False, highlight=False, soft_wrap=True)
    try:
        for rows in follow(store, _filters(args), last=args.last):
            for row in rows:
                if args.json:
                    print(json.dumps(_public(row), ensure_ascii=False), flush=True)
                    continue
                cells = _cells(row)
                cells[2] = escape(printable(cells[2]))
                out.print(_tail_line(cells), highlight=False, soft_wrap=True)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def _tail_line(cells: list[str]) -> str:
    from rich.text import Text

    parts = []
    for index, (cell, width) in enumerate(zip(cells, _TAIL_WIDTHS, strict=True)):
        visible = Text.from_markup(cell).cell_len
        pad = " " * max(0, width - visible)
        parts.append(pad + cell if _COLUMNS[index] in _NUMBERS else cell + pad)
    return "  ".join(parts).rstrip()


def run(args: argparse.Namespace) -> int:
    """Storage trouble (a damaged store, a full disk, a store that cannot be written) is one line and a hint
    on stderr and exit 1; bad input is exit 2 (through :func:`workbench.cli.main`)."""
    import sqlite3

    from workbench.core.traces.store import TraceStoreError, storage_error

    if getattr(args, "team", False):
        return _team(args)
    if getattr(args, "by", None) in _TEAM_GROUPS:
        raise ConfigError(f"--by {args.by}: only the team store's calls have one", "add --team")
    path = Path(args.db).expanduser() if args.db else settings(args).trace_path(os.environ)
    try:
        try:
            return _act(args, path)
        except sqlite3.Error as exc:
            raise storage_error(exc, path) from None
    except TraceStoreError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return 1


def _act(args: argparse.Namespace, path: Path) -> int:
    from workbench.core.traces.store import TraceStore

    action = args.traces_command
    if action == "check":
        return _check(path)
    if action == "recover":
        return _recover(path, Path(args.to).expanduser())
    store = TraceStore(path)
    try:
        if action == "list":
            _print_rows(store.page(_filters(args), args.before, args.limit), args.json)
        elif action == "search":
            _print_rows(store.search(args.text, _filters(args), limit=args.limit, fts=args.fts), args.json)
            if store.read_only and (waiting := store.unindexed()):
                print(f"workbench: {waiting} calls are not in the search index yet, and the store is read-only: "
                      "they were not searched", file=sys.stderr)
        elif action == "tail":
            return _tail(store, args)
        elif action == "show":
            return _show(store, args.id, args.json)
        elif action == "stats":
            _print_stats_or_json(store.stats(args.by, _filters(args)), args)
        elif action == "export":
            return _export(store, args)
        elif action == "prune":
            before = _moment(args.before)
            assert before is not None
            print(f"deleted {store.prune(before)} calls")
    finally:
        store.close()
    return 0


_TEAM_GROUPS = ("user", "host")
"""``stats --by`` groupings of the team store alone: who pushed the calls, from which host."""


def _team(args: argparse.Namespace) -> int:
    """``list``, ``search`` and ``stats`` with ``--team``: the same output, from the team store's calls."""
    from workbench.cli.team_reads import on_team_store
    from workbench.core.team.queries import TeamTraces

    if args.db:
        raise ConfigError("--db names a local store; --team reads the team store", "use one or the other")
    if args.traces_command == "search" and args.fts:
        raise ConfigError("--fts takes SQLite's FTS5 syntax, which the team store does not read",
                          "drop --fts: the team store finds calls holding every word as written")

    def act(conn: Any) -> int:
        store = TeamTraces(conn)
        if args.traces_command == "list":
            _print_rows(store.page(_filters(args), args.before, args.limit), args.json, team=True)
        elif args.traces_command == "search":
            _print_rows(store.search(args.text, _filters(args), limit=args.limit), args.json, team=True)
        else:
            _print_stats_or_json(store.stats(args.by, _filters(args)), args)
        return 0

    return on_team_store(settings(args), act)


def _print_stats_or_json(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _print_stats(rows, args.by)


def _check(path: Path) -> int:
    from workbench.core.traces import repair

    result = repair.check(path)
    for note in result.notes:
        print(note)
    if result.ok:
        print(f"{path}: ok (SQLite's integrity check{'' if result.notes else ' and the search index check'})")
        return 0
    print(f"{path} is damaged:")
    for problem in result.problems:
        for line in problem.splitlines():
            print(f"  {line}")
    print("workbench: the trace store is damaged\n  hint: `workbench traces recover --to NEW.db` copies what can "
          "still be read into a new store", file=sys.stderr)
    return 1


def _recover(path: Path, to: Path) -> int:
    from workbench.core.traces import repair

    result = repair.recover(path, to)
    how = {"copy": "a whole copy (VACUUM INTO)", "recover": "the sqlite3 tool's .recover",
           "rows": "every row that could still be read"}[result.method]
    print(f"recovered {result.calls:,} calls ({result.payloads:,} with their text) into {to}, by {how}")
    for note in result.notes:
        print(f"  {note}")
    print(f"{path} is left as it was; to use the new store, move it in its place or point WORKBENCH_TRACES at it")
    return 0


def _show(store: Any, call_id: str, as_json: bool) -> int:
    call = store.get(call_id)
    if call is None:
        raise WorkbenchError(f"no single call with id {call_id}", "copy an id from `workbench traces list`")
    payload = call.get("payload") or {}
    chunks = payload.get("chunk_ms") or b""
    import struct

    gaps = struct.unpack(f"<{len(chunks) // 4}f", chunks)
    if not as_json:
        from workbench.figures import trace_detail

        out = console()
        out.print(trace_detail(call), end="")
        out.print(f"\n{len(gaps)} content chunks", style="dim", markup=False)
        return 0
    attempts = json.loads(payload.get("attempts_json") or "[]")  # the last one answered (its status: http_status)
    detail = {**_public({k: v for k, v in call.items() if k != "payload"}),
              "request": json.loads(payload["request_json"]) if payload.get("request_json") else None,
              "response": payload.get("response_text"), "reasoning": payload.get("reasoning_text"),
              "tool_calls": json.loads(payload.get("tool_calls_json") or "[]"),
              "refusal": payload.get("refusal_text"), "refusal_category": payload.get("refusal_category"),
              "blocks": json.loads(payload.get("blocks_json") or "[]"),
              "attempts": attempts, "chunk_ms": [round(g, 3) for g in gaps],
              "http_status": attempts[-1].get("status") if attempts else None}
    print(json.dumps(detail, ensure_ascii=False))
    return 0


def _print_stats(rows: list[dict[str, Any]], by: str) -> None:
    from workbench.cli.render import Target, new_table, print_table

    numbers = ("calls", "USD", "TTFT\np50/p95", "latency\np50/p95", "cache\nhit", "length", "errors")
    table = new_table(by, *numbers, numbers=numbers)
    approximate = False
    for row in rows:
        spend = usd(row["spend_usd"])
        if row["unpriced_calls"] and row["unpriced_calls"] < row["calls"]:
            spend += f" (+{row['unpriced_calls']} unpriced)"
        mark = _APPROXIMATE if row.get("percentiles_approximate") else ""
        approximate = approximate or bool(mark)

        def pair(name: str, mark: str = mark, row: dict[str, Any] = row) -> str:
            return ms_pair(row[f"{name}_p50_ms"], row[f"{name}_p95_ms"], mark)

        label = _NO_GROUP.get(by, "(none)") if row[by] is None else str(row[by])
        group = Target(label) if by == "model" else label
        table.add_row(group, str(row["calls"]), spend, pair("ttft"), pair("latency"),
                      share(row["cache_hit_ratio"]), share(row["length_share"] or 0), share(row["error_share"] or 0))
    out = console()
    print_table(table, out)
    if approximate:
        from workbench.core.traces.rollup import RELATIVE_ERROR
        from workbench.core.traces.stats import EXACT_UP_TO

        out.print(f"{_APPROXIMATE} approximate (daily histograms, within {RELATIVE_ERROR:.1%}); groups of up "
                        f"to {EXACT_UP_TO:,} calls are exact")


_APPROXIMATE = "≈"
_NO_GROUP = {"prompt": "(no prompt)", "prompt-version": "(no prompt)", "tag": "(no tag)"}
"""The label of the calls a grouping leaves out (``null`` with --json)."""


def _export(store: Any, args: argparse.Namespace) -> int:
    if args.otlp is not None:
        return _export_otlp(store, args)
    try:
        out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout  # noqa: SIM115
    except OSError as exc:  # a folder, a missing folder, a place nobody may write: before anything is read
        raise WorkbenchError(f"cannot write {args.out}: {exc.strerror}", "pass a file path to -o/--out") from None
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
