"""Call policy: timeouts, retries, circuit breaker, fallbacks, hedging, rate limits, structured output.

Frozen dataclasses (no pydantic: the network process unpickles them without it). Policy arrives from
configuration (``[policy]`` in ``workbench.toml``, read by :mod:`workbench.core.config`) and command-line
flags: :func:`policies_from` validates a table there (types, unknown keys, ranges) with
:func:`workbench.core.validate.validated`, and keeps each override's values as validated. A :class:`PolicySet`
holds the defaults plus per-provider and per-target overrides; :meth:`PolicySet.for_target` merges them
(target beats provider beats defaults, field by field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

from workbench.core.bounds import FieldError, check
from workbench.core.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class _Policy:
    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts(_Policy):
    """Seconds. ``ttft``: request sent → first content (until the response headers show the request
    went out, the connect timeout is allowed on top); ``idle``: longest gap between chunks after it."""

    connect: float = 10.0
    ttft: float = 120.0
    idle: float = 60.0
    total: float = 900.0

    def __post_init__(self) -> None:
        for name in ("connect", "ttft", "idle", "total"):
            check(name, getattr(self, name), gt=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy(_Policy):
    """Exponential backoff with full jitter; a longer profile for 429/529 than for 5xx and transport errors."""

    max_retries: int = 2
    """0 to 20."""
    base_s: float = 0.5
    cap_s: float = 8.0
    rate_limit_base_s: float = 2.0
    rate_limit_cap_s: float = 60.0
    retry_after_cap_s: float = 60.0
    """A ``Retry-After`` longer than this is not waited for: the call falls back (or fails) at once."""

    def __post_init__(self) -> None:
        check("max_retries", self.max_retries, ge=0, le=20)
        for name in ("base_s", "cap_s", "rate_limit_base_s", "rate_limit_cap_s", "retry_after_cap_s"):
            check(name, getattr(self, name), gt=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy(_Policy):
    """Opens after ``consecutive_failures`` in a row, or a ``failure_rate`` over at least ``min_calls``
    calls in the last ``window_s``; stays open ``open_s`` before letting one probe through."""

    enabled: bool = True
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    min_calls: int = 10
    window_s: float = 60.0
    open_s: float = 30.0

    def __post_init__(self) -> None:
        check("consecutive_failures", self.consecutive_failures, ge=1)
        check("failure_rate", self.failure_rate, gt=0, le=1)
        check("min_calls", self.min_calls, ge=1)
        check("window_s", self.window_s, gt=0)
        check("open_s", self.open_s, gt=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitPolicy(_Policy):
    """Client-side limits per provider endpoint; ``None`` means unlimited."""

    rpm: float | None = None
    tpm: float | None = None
    concurrency: int | None = None
    burst_s: float = 1.0
    """Bucket capacity, in seconds of the rate (1 s: at most rpm/60 requests at once)."""
    headroom: float = 0.05
    """Slow down when a provider's remaining-requests/tokens headers fall below this share of the limit."""

    def __post_init__(self) -> None:
        check("rpm", self.rpm, gt=0)
        check("tpm", self.tpm, gt=0)
        check("concurrency", self.concurrency, ge=1)
        check("burst_s", self.burst_s, gt=0)
        check("headroom", self.headroom, ge=0, lt=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPolicy(_Policy):
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    rate_limit: RateLimitPolicy = field(default_factory=RateLimitPolicy)
    fallbacks: tuple[str, ...] = ()
    hedge_after_ms: float | None = None
    """Start the same request on the first fallback if no content arrived by then."""
    structured_retries: int = 1
    """How many times a reply that breaks the request's JSON schema is asked for again (a refusal never is; 0 to
    5)."""
    structured_more_room: float = 2.0
    """A reply cut at ``max_tokens`` before its JSON ended is asked for again with this many times the room
    (1: never: the same limit would cut it again; at most 8)."""

    def __post_init__(self) -> None:
        if not isinstance(self.fallbacks, tuple):
            object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        check("hedge_after_ms", self.hedge_after_ms, gt=0)
        check("structured_retries", self.structured_retries, ge=0, le=5)
        check("structured_more_room", self.structured_more_room, ge=1, le=8)

    def merged(self, override: Mapping[str, Any]) -> CallPolicy:
        """This policy with ``override`` applied field by field (nested sections merge, not replace). The values
        are taken as they are (validated where they were read: :func:`policies_from`, the flags); a range
        check failing is a :class:`ValueError`."""
        changes: dict[str, Any] = {}
        for key, value in override.items():
            current = getattr(self, key)
            try:
                changes[key] = replace(current, **value) if isinstance(current, _Policy) else value
            except FieldError as exc:
                raise FieldError(f"{key}.{exc.name}", exc.value, exc.problem) from None
        return replace(self, **changes)


def _merge(data: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a policy as a mapping) with ``override`` applied the way :meth:`CallPolicy.merged` does."""
    out = dict(data)
    for key, value in override.items():
        out[key] = {**out[key], **value} if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySet:
    """Defaults plus overrides keyed by provider (``openai``) or target (``openai/gpt-4.1-mini``)."""

    defaults: CallPolicy = field(default_factory=CallPolicy)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_target(self, target: str) -> CallPolicy:
        provider = target.partition("/")[0]
        policy = self.defaults
        for key in (provider, target):
            if key in self.overrides:
                policy = policy.merged(self.overrides[key])
        return policy

    def with_defaults(self, **override: Any) -> PolicySet:
        """These policies with the defaults changed (command-line flags win over files)."""
        return replace(self, defaults=self.defaults.merged(override))


class PolicyError(ConfigError):
    """A bad value in a ``[policy]`` table: ``keys`` is its dotted path (``policy``, ``targets``, ``NAME``, ...),
    ``problem`` what is wrong with it, so a caller holding the file's text can name its line."""

    def __init__(self, path: str, keys: tuple[str, ...], problem: str) -> None:
        super().__init__(f"{path}: {'.'.join(keys)}: {problem}", "see the policy section of the README")
        self.keys, self.problem = keys, problem


def _as_validated(policy: CallPolicy, override: Mapping[str, Any]) -> dict[str, Any]:
    """``override``'s keys with the values ``policy`` (validated with it applied) holds for them."""
    out: dict[str, Any] = {}
    for key, value in override.items():
        current = getattr(policy, key)
        out[key] = {name: getattr(current, name) for name in value} if isinstance(current, _Policy) else current
    return out


def policies_from(policy: dict[str, Any], path: str) -> PolicySet:
    """Policies from a ``[policy]`` table (``path`` names its file in errors, a :class:`PolicyError`)."""
    if not policy:  # the defaults: nothing to validate (building the validator costs tens of ms of start-up)
        return PolicySet()
    from pydantic import ValidationError

    from workbench.core.validate import problem, validated

    section = dict(policy)
    targets = section.pop("targets", {})
    if not isinstance(targets, dict) or not all(isinstance(o, dict) for o in targets.values()):
        raise PolicyError(path, ("policy", "targets"), "a table of tables, one per provider or target")
    where: tuple[str, ...] = ("policy",)
    overrides: dict[str, dict[str, Any]] = {}
    try:
        defaults = validated(CallPolicy, _merge(asdict(CallPolicy()), section))
        for name, override in targets.items():  # every override validated now, not at the first call
            where = ("policy", "targets", name)
            overrides[name] = _as_validated(validated(CallPolicy, _merge(asdict(defaults), override)), override)
    except ValidationError as exc:
        loc, message = problem(exc)
        raise PolicyError(path, (*where, *filter(None, loc.split("."))), message) from None
    return PolicySet(defaults=defaults, overrides=overrides)

