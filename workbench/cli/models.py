"""``workbench models``: every available target (configured, aliased, the local models, local servers found)
with readiness, context window, price and circuit."""

from __future__ import annotations

import argparse
import json

from workbench.cli._shared import EXIT_OK, services


def run(args: argparse.Namespace) -> int:
    from workbench.core.discovery import discover
    from workbench.core.local_model import LOCAL_MODELS
    from workbench.core.targets import target_rows
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
                   + [(t, "discovered") for t in discover(env, specs, settings.network(env))])
        rows = target_rows(settings, env, sources, None if store is None else (
            lambda target, since: store.page(Filters(model=target, since=since), limit=500)))
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        for row in rows:
            window = f"{row['context_window']:,}" if row["context_window"] else "?"
            state = "ready" if row["ready"] else "not ready"
            price = ("price unknown" if row["input_usd_per_mtok"] is None else
                     f"${row['input_usd_per_mtok']:g}/${row['output_usd_per_mtok']:g} per Mtok")
            setup = f"  ({row['setup']})" if row["setup"] else ""
            print(f"{row['target']:<45} {row['source']:<16} {state:<9} ctx {window:<10} {price:<24} "
                  f"circuit {row['circuit']}{setup}")
    return EXIT_OK
