"""Available targets, as ``workbench models`` and the TUI's Keys & models screen list them, and the
targets of a run that names none.

Each row: where the target runs (cloud, local, fake), where its key comes from (never the key), whether it is
ready (a key, a local server, or the local runtime installed), its context window, its price per million tokens,
and the circuit state its breaker would have now, replayed from the endpoint's recent calls in the trace log (a
one-shot process has no live breaker to ask). The cloud models listed come from the bundled price data
(:func:`~workbench.core.pricing.current_models`) and the small model per provider a run picks with a key.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.config import Settings
from workbench.core.errors import ConfigError
from workbench.core.events import Usage
from workbench.core.keys import key_source
from workbench.core.local_model import INSTALL_HINT, LOCAL_MODELS, LOCAL_URL_ENV, model_file
from workbench.core.pricing import PRICE_PROVIDERS, current_models
from workbench.core.registry import ProviderSpec
from workbench.core.resilience.breaker import replay_state, unhealthy

RecentCalls = Callable[[str, float], list[dict[str, Any]]]
"""(target, since) → that target's trace rows since then, newest first."""


def target_rows(settings: Settings, env: Mapping[str, str], sources: Iterable[tuple[str, str]],
                recent_calls: RecentCalls | None = None) -> list[dict[str, Any]]:
    """One row per distinct target of ``sources`` ((target, where it comes from) pairs, in order)."""
    specs = settings.config.provider_specs()
    now = time.time()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    keys: dict[str, str] = {}
    for target, source in sources:
        if target in seen:
            continue
        seen.add(target)
        provider, _, model = target.partition("/")
        spec = specs.get(provider)
        if provider == "local":
            ready, setup = local_ready(model, env), INSTALL_HINT
        else:
            ready = spec is not None and (not spec.key_env or spec.local or has_key(spec, env))
            setup = f"add a key: workbench keys set {provider}" if spec else f"unknown provider '{provider}'"
        per_mtok = [settings.prices.cost(target, usage) for usage in (Usage(input_tokens=10**6),
                                                                      Usage(output_tokens=10**6))]
        if provider not in keys:
            keys[provider] = key_source(provider, env, specs)
        rows.append({"target": target, "provider": provider, "where": where(provider, spec), "key": keys[provider],
                     "source": source, "ready": ready, "setup": None if ready else setup,
                     "context_window": settings.prices.facts(target).context_window,
                     "input_usd_per_mtok": None if per_mtok[0] is None else float(per_mtok[0]),
                     "output_usd_per_mtok": None if per_mtok[1] is None else float(per_mtok[1]),
                     "circuit": circuit_state(settings, target, recent_calls, now)})
    return rows


def where(provider: str, spec: ProviderSpec | None) -> str:
    """``fake`` (the built-in fake server), ``local`` (this machine or a local server), ``cloud``, or ``?``."""
    if spec is None:
        return "?"
    if provider.startswith("fake"):
        return "fake"
    return "local" if spec.local else "cloud"


def cloud_catalog(specs: Mapping[str, ProviderSpec]) -> list[tuple[str, str]]:
    """(target, source) for each cloud provider of ``specs`` the price data covers (one per price provider:
    ``openai-responses`` serves ``openai``'s models): the small model a run picks with its key, then its current
    models."""
    out: list[tuple[str, str]] = []
    covered: set[str] = set()
    for provider, spec in specs.items():
        priced = PRICE_PROVIDERS.get(provider)
        if spec.local or priced is None or priced in covered:
            continue
        covered.add(priced)
        if provider in KEYED_DEFAULTS:
            out.append((KEYED_DEFAULTS[provider], "small default"))
        out.extend((target, "current") for target in current_models(provider))
    return out


def circuit_state(settings: Settings, target: str, recent_calls: RecentCalls | None, now: float) -> str:
    if recent_calls is None:
        return "closed"
    policy = settings.policies.for_target(target).breaker
    rows = recent_calls(target, now - max(policy.window_s, policy.open_s) * 4)
    outcomes = [(r["ts"], r["status"] == "ok" or not unhealthy(r["error_class"] or "")) for r in reversed(rows)]
    return replay_state(outcomes, policy, now).value


def has_key(spec: ProviderSpec, env: Mapping[str, str]) -> bool:
    return any(env.get(v) for v in spec.key_env)


def local_ready(model: str, env: Mapping[str, str]) -> bool:
    """Whether ``local/<model>`` can run here: a local model server is set in ``env``, or the model's package and
    llama.cpp's runtime are installed (the faces then start the server)."""
    if env.get(LOCAL_URL_ENV):
        return True
    try:
        model_file(model)
    except ConfigError:
        return False
    return importlib.util.find_spec("llama_cpp") is not None


KEYED_DEFAULTS = {
    "openai": "openai/gpt-4.1-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "mistral": "mistral/mistral-small-latest",
    "groq": "groq/llama-3.3-70b-versatile",
    "deepseek": "deepseek/deepseek-chat",
}
"""A small, cheap model per provider, raced when a run names no target and that provider has a key."""


@dataclass(frozen=True, slots=True)
class DefaultTargets:
    targets: list[str]
    notice: str | None = None
    """One line for the user when the targets were picked here rather than configured."""


def default_targets(env: Mapping[str, str], settings: Settings,
                    discovered: Callable[[], Sequence[str]]) -> DefaultTargets:
    """The targets of a run that names none, in order of preference:

    1. the configuration's ``[defaults] targets``;
    2. with provider keys (``env`` holds the environment plus keyring keys): one small model per keyed provider
       of :data:`KEYED_DEFAULTS`;
    3. with no key: the local models whose runtime is installed, plus the first model of each local server
       that ``discovered()`` finds (called only here).

    Raises :class:`ConfigError` with the next step when none of them gives a target."""
    config = settings.config
    if config.defaults.targets:
        return DefaultTargets([config.expand(t) for t in config.defaults.targets])
    specs = config.provider_specs()
    keyed = [target for provider, target in KEYED_DEFAULTS.items()
             if provider in specs and has_key(specs[provider], env)]
    if keyed:
        return DefaultTargets(keyed, f"no target given: racing {', '.join(keyed)} (a small model per provider "
                                     "with a key); pass -m, or set [defaults] targets in workbench.toml")
    servers: dict[str, str] = {}
    for target in discovered():
        servers.setdefault(target.partition("/")[0], target)
    found = [f"local/{name}" for name in sorted(LOCAL_MODELS) if local_ready(name, env)] + list(servers.values())
    if not found:
        raise ConfigError("no target given, no API key and no local model",
                          f"add a key (`workbench keys set openai`), pass -m provider/model, or {INSTALL_HINT}")
    return DefaultTargets(found, f"no API key: running {', '.join(found)} on this machine; add a key with "
                                 "`workbench keys set openai` (or pass -m provider/model)")
