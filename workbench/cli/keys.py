"""``workbench keys set|list|delete|test``: API keys in the OS keyring."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from workbench.cli._shared import EXIT_OK, known_provider, settings
from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.core.registry import ProviderSpec


def run(args: argparse.Namespace) -> int:
    from workbench.core import keys

    action = args.keys_command
    if action == "set":
        from workbench.core.team.target import KEYRING_ENTRY

        if args.provider != KEYRING_ENTRY:  # `keys set team`: the team store's password
            _takes_a_key(args.provider, settings(args).config.provider_specs())
        what = "team store password" if args.provider == KEYRING_ENTRY else "API key"
        value = sys.stdin.readline() if args.stdin else getpass.getpass(f"{args.provider} {what} (hidden): ")
        keys.set_key(args.provider, value)
        print(f"stored the {args.provider} key in the keyring ({keys.mask(value.strip())})")
        shadow = next((s for s in keys.key_statuses(os.environ) if s.provider == args.provider and s.shadowed), None)
        if shadow is not None:
            print(f"note: {shadow.env_var} is set and overrides it", file=sys.stderr)
    elif action == "delete":
        found = keys.delete_key(args.provider)
        print(f"deleted the stored {args.provider} key" if found else f"no {args.provider} key was stored")
    elif action == "list":
        from workbench.core.team.target import KEYRING_ENTRY

        statuses = [*keys.key_statuses(os.environ), keys.entry_status(KEYRING_ENTRY)]  # the team store's password
        if args.json:
            for s in statuses:
                print(json.dumps({"provider": s.provider, "env_var": s.env_var, "source": s.source,
                                  "key": s.masked, "overrides_keyring": s.shadowed}))
        else:
            for s in statuses:
                note = " (overrides the keyring)" if s.shadowed else ""
                print(f"{s.provider:<12} {s.source:<12} {s.masked or '':<8} {s.env_var}{note}")
    elif action == "test":
        return _test(args.provider, args.json)
    return EXIT_OK


def _takes_a_key(provider: str, specs: Mapping[str, ProviderSpec]) -> None:
    """A :class:`WorkbenchError` unless ``provider`` is a provider that reads an API key."""
    keyed = {name: spec for name, spec in specs.items() if spec.key_env}
    if provider in specs and provider not in keyed:
        raise WorkbenchError(f"{provider} takes no API key", "keys are for: " + ", ".join(sorted(keyed)))
    known_provider(provider, keyed)


def _test(provider: str, as_json: bool) -> int:
    from workbench.core.config import load_settings
    from workbench.core.httpclient import new_client
    from workbench.core.keys import with_stored_keys
    from workbench.core.registry import make_provider, resolve
    from workbench.core.request import ModelRef

    network = load_settings().network(os.environ)
    listing = ModelRef(provider=provider, model="-")  # the model list: no model of its own

    async def probe() -> tuple[float, int, dict[str, str]]:
        async with new_client(network) as client:
            endpoint = resolve(listing, with_stored_keys(os.environ, [provider]))
            started = time.perf_counter()
            count, limits = await make_provider(endpoint, client).list_models()
            return (time.perf_counter() - started) * 1000, count, limits

    try:
        latency_ms, count, limits = asyncio.run(probe())
    except WorkbenchError as exc:  # said of the provider, as no model was tried
        error = WorkbenchError(f"{provider}: {str(exc).removeprefix(f'{listing}: ')}", exc.hint)
        if as_json:
            print(json.dumps({"provider": provider, "ok": False, "error": str(error)}))
        raise error from None
    if as_json:
        print(json.dumps({"provider": provider, "ok": True, "latency_ms": round(latency_ms, 1), "models": count,
                          "rate_limits": limits}))
    else:
        print(f"{provider}: key accepted, {count} models listed in {latency_ms:.0f} ms")
        for name, value in sorted(limits.items()):
            print(f"  {name}: {value}")
    return EXIT_OK
