"""``workbench init``, ``workbench config show`` and ``workbench models``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

TEMPLATE = """\
# workbench configuration for this workspace (see the README for every section).
# Keys never go here: use `workbench keys set PROVIDER` or the provider's environment variable.

[defaults]
# targets = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"]
# max_tokens = 1024

[aliases]
# fast = "groq/llama-3.3-70b-versatile"

[traces]
metadata_only = false
redact = ["email", "card", "api_key"]

[policy.retry]
max_retries = 2
"""
FOLDERS = ("prompts", "evals", "sessions", "reports")


def add_parsers(sub: Any) -> None:
    init = sub.add_parser("init", help="make a workspace: workbench.toml, prompts/, evals/, sessions/, reports/")
    init.add_argument("dir", nargs="?", default=".")
    config = sub.add_parser("config", help="the merged configuration and where each part comes from")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the merged configuration with its sources")
    show.add_argument("--config", metavar="FILE")
    show.add_argument("--json", action="store_true")
    models = sub.add_parser("models", help="every available target: configured, aliased, the local model and "
                                           "local servers found")
    models.add_argument("--config", metavar="FILE")
    models.add_argument("--json", action="store_true", help="one JSON object per line")


def init(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    made = []
    config = root / "workbench.toml"
    if not config.exists():
        config.write_text(TEMPLATE, encoding="utf-8")
        made.append("workbench.toml")
    for folder in FOLDERS:
        if not (root / folder).exists():
            (root / folder).mkdir()
            made.append(f"{folder}/")
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if ".workbench/" not in lines:
        ignore.write_text("\n".join([*lines, ".workbench/"]) + "\n", encoding="utf-8")
        made.append(".gitignore")
    print(f"workspace at {root}: " + (", ".join(made) if made else "already complete"))
    return 0


def config_show(args: argparse.Namespace) -> int:
    from workbench.core.config import load_settings
    from workbench.core.keys import key_statuses

    settings = load_settings(Path(args.config) if args.config else None)
    data = settings.config.model_dump(mode="json")
    origin = {key: str(path) for key, path in settings.loaded.origin.items()}
    keys = {s.provider: {"source": s.source, "key": s.masked, "env_var": s.env_var}
            for s in key_statuses(os.environ)}
    network = [{"setting": name, "value": value, "source": source}
               for name, value, source in settings.network(os.environ).describe()]
    if args.json:
        print(json.dumps({"sources": [str(p) for p in settings.loaded.sources], "config": data, "origin": origin,
                          "keys": keys, "network": network}, indent=2))
        return 0
    print("sources: " + (", ".join(str(p) for p in settings.loaded.sources) or "none (built-in defaults)"))
    for dotted, value in _flatten(data):
        where = next((origin[k] for k in _prefixes(dotted) if k in origin), "default")
        print(f"{dotted} = {json.dumps(value)}    # {where}")
    print("effective network settings:")
    for row in network:
        print(f"  {row['setting']} = {row['value']}    # {row['source']}")
    for provider, status in keys.items():
        if status["source"] != "none":
            print(f"key {provider}: {status['source']} {status['key']}")
    return 0


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def models(args: argparse.Namespace) -> int:
    from workbench.core.config import load_settings
    from workbench.core.discovery import discover
    from workbench.core.keys import with_stored_keys
    from workbench.core.local_model import LOCAL_MODELS
    from workbench.core.targets import target_rows
    from workbench.core.traces.store import Filters, TraceStore

    settings = load_settings(Path(args.config) if args.config else None)
    config = settings.config
    specs = config.provider_specs()
    env = with_stored_keys(os.environ, sorted(specs), specs)
    path = settings.trace_path(os.environ)
    store = TraceStore(path) if path.exists() else None
    sources = ([(t, "defaults") for t in config.defaults.targets]
               + [(t, f"alias {a}") for a, t in config.aliases.items()]
               + [(f"local/{name}", "this machine") for name in sorted(LOCAL_MODELS)]
               + [(t, "discovered") for t in discover(env, specs, settings.network(env))])
    try:
        rows = target_rows(settings, env, sources, None if store is None else (
            lambda target, since: store.page(Filters(model=target, since=since), limit=500)))
    finally:
        if store is not None:
            store.close()
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
    return 0
