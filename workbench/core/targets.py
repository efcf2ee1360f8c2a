"""Available targets, as ``workbench models`` and the TUI's Keys & models screen list them.

Each row: whether the target is ready (a key, or a local server), its context window, its price per
million tokens, and the circuit state its breaker would have now, replayed from the endpoint's recent
calls in the trace log (a one-shot process has no live breaker to ask).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workbench.core.config import Settings
from workbench.core.events import Usage
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
    for target, source in sources:
        if target in seen:
            continue
        seen.add(target)
        provider = target.partition("/")[0]
        spec = specs.get(provider)
        ready = spec is not None and (not spec.key_env or spec.local or any(env.get(v) for v in spec.key_env))
        per_mtok = [settings.prices.cost(target, usage) for usage in (Usage(input_tokens=10**6),
                                                                      Usage(output_tokens=10**6))]
        rows.append({"target": target, "provider": provider, "source": source, "ready": ready,
                     "context_window": settings.prices.facts(target).context_window,
                     "input_usd_per_mtok": None if per_mtok[0] is None else float(per_mtok[0]),
                     "output_usd_per_mtok": None if per_mtok[1] is None else float(per_mtok[1]),
                     "circuit": circuit_state(settings, target, recent_calls, now)})
    return rows


def circuit_state(settings: Settings, target: str, recent_calls: RecentCalls | None, now: float) -> str:
    if recent_calls is None:
        return "closed"
    policy = settings.policies.for_target(target).breaker
    rows = recent_calls(target, now - max(policy.window_s, policy.open_s) * 4)
    outcomes = [(r["ts"], r["status"] == "ok" or not unhealthy(r["error_class"] or "")) for r in reversed(rows)]
    return replay_state(outcomes, policy, now).value
