"""Call policy: timeouts, retries, circuit breaker, fallbacks, hedging, rate limits, structured output.

Pydantic models, because policy arrives from configuration (``[policy]`` in ``workbench.toml``, read by
:mod:`workbench.core.config`) and
command-line flags, and must be validated there. A :class:`PolicySet` holds the defaults plus
per-provider and per-target overrides; :meth:`PolicySet.for_target` merges them (target beats
provider beats defaults, field by field).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.core.errors import ConfigError


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Policy):
    """Seconds. ``ttft``: request sent → first content (until the response headers show the request
    went out, the connect timeout is allowed on top); ``idle``: longest gap between chunks after it."""

    connect: float = Field(default=10.0, gt=0)
    ttft: float = Field(default=120.0, gt=0)
    idle: float = Field(default=60.0, gt=0)
    total: float = Field(default=900.0, gt=0)


class RetryPolicy(_Policy):
    """Exponential backoff with full jitter; a longer profile for 429/529 than for 5xx and transport errors."""

    max_retries: int = Field(default=2, ge=0, le=20)
    base_s: float = Field(default=0.5, gt=0)
    cap_s: float = Field(default=8.0, gt=0)
    rate_limit_base_s: float = Field(default=2.0, gt=0)
    rate_limit_cap_s: float = Field(default=60.0, gt=0)
    retry_after_cap_s: float = Field(default=60.0, gt=0)
    """A ``Retry-After`` longer than this is not waited for: the call falls back (or fails) at once."""


class BreakerPolicy(_Policy):
    """Opens after ``consecutive_failures`` in a row, or a ``failure_rate`` over at least ``min_calls``
    calls in the last ``window_s``; stays open ``open_s`` before letting one probe through."""

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_calls: int = Field(default=10, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    open_s: float = Field(default=30.0, gt=0)


class RateLimitPolicy(_Policy):
    """Client-side limits per provider endpoint; ``None`` means unlimited."""

    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    burst_s: float = Field(default=1.0, gt=0)
    """Bucket capacity, in seconds of the rate (1 s: at most rpm/60 requests at once)."""
    headroom: float = Field(default=0.05, ge=0, lt=1)
    """Slow down when a provider's remaining-requests/tokens headers fall below this share of the limit."""


class CallPolicy(_Policy):
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    rate_limit: RateLimitPolicy = Field(default_factory=RateLimitPolicy)
    fallbacks: tuple[str, ...] = ()
    hedge_after_ms: float | None = Field(default=None, gt=0)
    """Start the same request on the first fallback if no content arrived by then."""
    structured_retries: int = Field(default=1, ge=0, le=5)
    """How many times a reply that breaks the request's JSON schema is asked for again (a refusal never is)."""
    structured_more_room: float = Field(default=2.0, ge=1, le=8)
    """A reply cut at ``max_tokens`` before its JSON ended is asked for again with this many times the room
    (1: never: the same limit would cut it again)."""

    def merged(self, override: dict[str, Any]) -> CallPolicy:
        """This policy with ``override`` applied field by field (nested sections merge, not replace)."""
        data = self.model_dump()
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return CallPolicy.model_validate(data)


class PolicySet(BaseModel):
    """Defaults plus overrides keyed by provider (``openai``) or target (``openai/gpt-4.1-mini``)."""

    model_config = ConfigDict(frozen=True)

    defaults: CallPolicy = Field(default_factory=CallPolicy)
    overrides: dict[str, dict[str, Any]] = {}

    def for_target(self, target: str) -> CallPolicy:
        provider = target.partition("/")[0]
        policy = self.defaults
        for key in (provider, target):
            if key in self.overrides:
                policy = policy.merged(self.overrides[key])
        return policy

    def with_defaults(self, **override: Any) -> PolicySet:
        """These policies with the defaults changed (command-line flags win over files)."""
        return self.model_copy(update={"defaults": self.defaults.merged(override)})


class PolicyError(ConfigError):
    """A bad value in a ``[policy]`` table: ``keys`` is its dotted path (``policy``, ``targets``, ``NAME``, ...),
    ``problem`` what is wrong with it, so a caller holding the file's text can name its line."""

    def __init__(self, path: str, keys: tuple[str, ...], problem: str) -> None:
        super().__init__(f"{path}: {'.'.join(keys)}: {problem}", "see the policy section of the README")
        self.keys, self.problem = keys, problem


def policies_from(policy: dict[str, Any], path: str) -> PolicySet:
    """Policies from a ``[policy]`` table (``path`` names its file in errors, a :class:`PolicyError`)."""
    section = dict(policy)
    targets = section.pop("targets", {})
    if not isinstance(targets, dict) or not all(isinstance(o, dict) for o in targets.values()):
        raise PolicyError(path, ("policy", "targets"), "a table of tables, one per provider or target")
    where: tuple[str, ...] = ("policy",)
    try:
        defaults = CallPolicy().merged(section)
        for name, override in targets.items():  # every override validated now, not at the first call
            where = ("policy", "targets", name)
            defaults.merged(override)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PolicyError(path, (*where, *(str(p) for p in first["loc"])), first["msg"]) from None
    return PolicySet(defaults=defaults, overrides=targets)
