"""``workbench evals list|show|diff``: the eval runs stored beside the trace log."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from workbench.cli._shared import EXIT_FAILED, EXIT_OK, console, eval_store, settings
from workbench.figures import usd


def run(args: argparse.Namespace) -> int:
    from workbench.core.evals.diff import diff_runs
    from workbench.core.evals.report_data import cells_of, report_for
    from workbench.core.evals.report_formats import render

    store = eval_store(settings(args))
    if args.evals_command == "list":
        from rich.console import Group

        from workbench.cli.render import Target, new_table, print_table

        table = new_table("id", "suite", "state", "USD", "targets", numbers=("USD",), whole=("id", "state"))
        for info in store.runs(args.suite, args.limit):
            row = {"id": info.id, "suite": info.suite, "status": info.status, "stop_reason": info.stop_reason,
                   "verdict": info.verdict, "started_at": info.started_at, "repeat": info.repeat,
                   "targets": list(info.targets), "cost_usd": round(info.cost_usd, 6)}
            state = "interrupted" if info.stop_reason == "interrupted" else info.verdict or info.status
            if args.json:
                print(json.dumps(row))
            else:
                table.add_row(info.id, info.suite, state, usd(info.cost_usd),
                              Group(*(Target(target) for target in info.targets)))  # one a line
        if table.row_count:
            print_table(table, console())
        return EXIT_OK
    if args.evals_command == "show":  # as the run reported it: its recorded gate, comparison and verdict
        sys.stdout.write(render(report_for(store, store.run(args.run)), args.format))
        return EXIT_OK
    head = store.run(args.head)
    base = store.run(args.base)
    from workbench.core.evals.model import RunReport

    diff = diff_runs(RunReport(base, cells_of(store, base)), RunReport(head, cells_of(store, head)))
    for entry in diff.entries:
        if args.json:
            print(json.dumps({"test": entry.key.test, "prompt": entry.key.prompt, "target": entry.key.target,
                              "change": entry.change,
                              "base_pass_rate": entry.base.pass_rate if entry.base else None,
                              "head_pass_rate": entry.head.pass_rate if entry.head else None,
                              "cost_delta_usd": entry.cost_delta, "latency_delta_ms": entry.latency_delta_ms}))
        elif entry.change != "unchanged":
            print(f"{entry.change:<12} {entry.key.test} · {entry.key.prompt} · {entry.key.target}")
    if not args.json:  # a diff with nothing to show still says what it compared
        counts = Counter(entry.change for entry in diff.entries)
        changes = ", ".join(f"{n} {change}" for change, n in sorted(counts.items())) or "no cells"
        print(f"{base.id} → {head.id}: {changes}")
    return EXIT_FAILED if diff.regressions else EXIT_OK
