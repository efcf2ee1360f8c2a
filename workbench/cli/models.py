"""``workbench models``: every available target (configured, aliased, the local models, local servers found, the
cloud providers' current models) as a table: where it runs, where its key comes from, readiness, context window,
price and circuit; ``--json``: one object per target with the same fields."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from workbench.cli._shared import EXIT_OK, console, services


def run(args: argparse.Namespace) -> int:
    from workbench.core.discovery import discover
    from workbench.core.local_model import LOCAL_MODELS
    from workbench.core.targets import cloud_catalog, target_rows
    from workbench.core.traces.filters import Filters

    with services(args) as found:
        settings = found.settings()
        config = settings.config
        specs = config.provider_specs()
        env = found.keyed_env()
        store = found.store() if found.trace_path().exists() else None  # no history: no new log either
        sources = ([(t, "defaults") for t in config.defaults.targets]
                   + [(t, f"alias {a}") for a, t in config.aliases.items()]
                   + [(f"local/{name}", "this machine") for name in sorted(LOCAL_MODELS)]
                   + [(t, "discovered") for t in discover(env, specs, settings.network(env))]
                   + cloud_catalog(specs))
        rows = target_rows(settings, env, sources, None if store is None else (
            lambda target, since: store.page(Filters(model=target, since=since), limit=500)))
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _table(rows)
    return EXIT_OK


def _table(rows: list[dict[str, Any]]) -> None:
    from workbench.cli.render import Target, new_table, print_table

    numbers = ("context", "$/1M in", "$/1M out")
    table = new_table("target", "provider", "where", "key", *numbers, "ready", "listed as", "circuit",
                      numbers=numbers, whole=("provider", "where", "key", "ready", "circuit"))
    for row in rows:
        window = f"{row['context_window']:,}" if row["context_window"] else "?"
        table.add_row(Target(row["target"]), row["provider"], row["where"], row["key"], window,
                      _per_mtok(row["input_usd_per_mtok"]), _per_mtok(row["output_usd_per_mtok"]),
                      "yes" if row["ready"] else "no", row["source"], row["circuit"])
    out = console()
    print_table(table, out)
    for setup, count in Counter(row["setup"] for row in rows if row["setup"]).items():
        out.print(f"not ready ({count}): {setup}", markup=False, highlight=False)


def _per_mtok(usd: float | None) -> str:
    return "?" if usd is None else f"${usd:g}"
