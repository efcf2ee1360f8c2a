"""``workbench config show``: the merged configuration, where each part comes from, the network settings in
force and where each key comes from."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from workbench.cli._shared import EXIT_OK
from workbench.cli._shared import settings as load_settings


def run(args: argparse.Namespace) -> int:
    from workbench.core.keys import key_statuses

    settings = load_settings(args)
    data = settings.config.model_dump(mode="json")
    origin = {key: str(path) for key, path in settings.loaded.origin.items()}
    keys = {s.provider: {"source": s.source, "key": s.masked, "env_var": s.env_var}
            for s in key_statuses(os.environ)}
    network = [{"setting": name, "value": value, "source": source}
               for name, value, source in settings.network(os.environ).describe()]
    if args.json:
        print(json.dumps({"sources": [str(p) for p in settings.loaded.sources], "config": data, "origin": origin,
                          "keys": keys, "network": network}, indent=2))
        return EXIT_OK
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
    return EXIT_OK


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
