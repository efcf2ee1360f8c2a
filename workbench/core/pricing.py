"""Prices and context windows: the bundled genai-prices data (offline), under a user price table.

A cost is computed from usage normalised to the OpenTelemetry rules (input includes the cached-read
and cache-write parts, output includes reasoning), which is also how genai-prices counts; cache writes with a
1-hour TTL are priced at their own rate (genai-prices' ``cache_write_1h_mtok``: Anthropic's 2x input). Prices are
the ones in force at the time of the call. A model nobody priced costs ``None`` ("unknown"), never 0.
Models run on this machine by the workbench (``local/…``) are priced here at 0: local compute has no bill.

The user table lives in ``workbench.toml`` (``--prices FILE`` elsewhere)::

    [prices."vllm/*"]                       # fnmatch patterns over provider/model
    input_per_mtok = 0
    output_per_mtok = 0
    [prices."openrouter/acme/model-x"]
    input_per_mtok = 0.8
    output_per_mtok = 2.4
    cache_read_per_mtok = 0.08
    context_window = 131072

It overrides the bundled data for the models it matches, and adds models the data does not know.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar

from workbench.core.bounds import check
from workbench.core.errors import ConfigError
from workbench.core.events import Usage
from workbench.core.local_model import CONTEXT_TOKENS

_MTOK = Decimal(1_000_000)

# Our provider names → genai-prices provider ids (providers it has no data for stay unpriced).
PRICE_PROVIDERS = {
    "openai": "openai", "openai-responses": "openai", "anthropic": "anthropic", "gemini": "google",
    "groq": "groq", "mistral": "mistral", "deepseek": "deepseek", "openrouter": "openrouter",
    "together": "together",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPrice:
    """One row of the user price table, USD per million tokens."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    """Cache writes with a 1-hour TTL (Anthropic's 2x input); unset: the cache-write rate."""
    context_window: int | None = None

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok",
                     "cache_write_1h_per_mtok"):
            check(name, getattr(self, name), ge=0)
        check("context_window", self.context_window, gt=0)

    def cost(self, usage: Usage) -> Decimal:
        cache_read = self.cache_read_per_mtok if self.cache_read_per_mtok is not None else self.input_per_mtok
        cache_write = self.cache_write_per_mtok if self.cache_write_per_mtok is not None else self.input_per_mtok
        write_1h = self.cache_write_1h_per_mtok if self.cache_write_1h_per_mtok is not None else cache_write
        read, write = usage.cache_read_tokens or 0, usage.cache_write_tokens or 0
        hour = min(usage.cache_write_1h_tokens or 0, write)
        plain_input = usage.input_tokens - read - write
        return (plain_input * self.input_per_mtok + read * cache_read + (write - hour) * cache_write
                + hour * write_1h + usage.output_tokens * self.output_per_mtok) / _MTOK


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the price data knows of a target."""

    model_id: str | None
    """The priced model it matched (``None``: unknown)."""
    context_window: int | None
    source: str
    """``user``, ``workbench`` (a built-in row), ``genai-prices`` or ``unknown``."""


BUILTIN_PRICES = {
    "local/*": UserPrice(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0), context_window=CONTEXT_TOKENS),
}
"""Rows the workbench knows itself, under the user table: the models it runs on this machine cost nothing."""


def _match(table: dict[str, UserPrice], base: str) -> UserPrice | None:
    if base in table:
        return table[base]
    return next((row for pattern, row in table.items() if fnmatch.fnmatchcase(base, pattern)), None)


class PriceBook:
    def __init__(self, user: dict[str, UserPrice] | None = None) -> None:
        self.user = user or {}

    def _row(self, target: str) -> tuple[UserPrice, str] | None:
        """The user's row for ``target``, else a built-in one, with its source."""
        base = _base_target(target)
        for table, source in ((self.user, "user"), (BUILTIN_PRICES, "workbench")):
            row = _match(table, base)
            if row is not None:
                return row, source
        return None

    def facts(self, target: str) -> ModelFacts:
        found_row = self._row(target)
        found = _bundled_model(target)
        if found_row is not None:
            row, source = found_row
            window = row.context_window or (found[1] if found else None)
            return ModelFacts(_base_target(target), window, source)
        if found is None:
            return ModelFacts(None, None, "unknown")
        return ModelFacts(found[0], found[1], "genai-prices")

    def cost(self, target: str, usage: Usage, at: datetime | None = None) -> Decimal | None:
        """USD for ``usage`` on ``target`` at time ``at`` (now when ``None``); ``None`` when unpriced."""
        found_row = self._row(target)
        if found_row is not None:
            return found_row[0].cost(usage)
        if _bundled_model(target) is None:
            return None
        import genai_prices

        provider, model = _split(target)
        try:
            result = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                   cache_read_tokens=usage.cache_read_tokens or None,
                                   cache_write_tokens=usage.cache_write_tokens or None,
                                   cache_write_1h_tokens=_one_hour(usage)),
                model, provider_id=PRICE_PROVIDERS[provider], genai_request_timestamp=at,
            )
        except (LookupError, ValueError):
            return None
        return result.total_price


def _one_hour(usage: Usage) -> int | None:
    """The 1-hour part of the cache writes, as genai-prices takes it (within the writes; ``None`` when none)."""
    hour = min(usage.cache_write_1h_tokens or 0, usage.cache_write_tokens or 0)
    return hour or None


def _split(target: str) -> tuple[str, str]:
    provider, _, model = target.partition("/")
    return provider, model.split("@", 1)[0] if "=" in model.split("@", 1)[-1] else model


def _base_target(target: str) -> str:
    provider, model = _split(target)
    return f"{provider}/{model}"


@cache
def _bundled_model(target: str) -> tuple[str, int | None] | None:
    """(model id, context window) from the bundled genai-prices data, or ``None`` when it has none."""
    provider, model = _split(target)
    provider_id = PRICE_PROVIDERS.get(provider)
    if provider_id is None:
        return None
    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return info.id, info.context_window


_SPECIAL_PURPOSE = re.compile(r"audio|image|tts|transcri|realtime|embed|ocr|search|guard|live|whisper|vision|"
                              r"moderation|computer-use|robotics|omni|cyber|voxtral|preview|exp\b|latest|:|ft-|"
                              r"\d{4}-\d{2}-\d{2}")
"""Model ids that are not a current chat model: speech, images, embeddings, previews, fine-tunes, dated snapshots."""
_SIZE = re.compile(r"-\d+(?:x\d+)?b\b")
_NUMBER = re.compile(r"\d+(?:[.-]\d+)*")


def _version(model_id: str) -> tuple[int, ...]:
    """A model's version: its first number, parameter counts (``-70b``) aside (``gpt-5.4-mini`` → (5, 4))."""
    found = _NUMBER.search(_SIZE.sub("", model_id))
    return tuple(int(part) for part in re.split(r"[.-]", found[0])) if found else ()


@cache
def current_models(provider: str) -> tuple[str, ...]:
    """The provider's current chat models in the bundled price data, as ``provider/model``, sorted.

    Only providers with models of their own (not gateways such as OpenRouter or Groq, which serve everyone's).
    A model counts when the data prices its text input and output and knows its context window, it is not
    deprecated nor of special purpose (:data:`_SPECIAL_PURPOSE`), and it is the newest of its family (its id with
    the version number left out), in the newest major version of its series (``gpt``, ``o``, ``claude``...)."""
    provider_id = PRICE_PROVIDERS.get(provider)
    if provider_id is None:
        return ()
    from genai_prices import data_snapshot

    data = next((p for p in data_snapshot.get_snapshot().providers if p.id == provider_id), None)
    if data is None or data.model_match is None:
        return ()
    newest: dict[str, str] = {}
    for model in data.models:
        if (model.deprecated or not model.context_window or _SPECIAL_PURPOSE.search(model.id)
                or not data.model_match.is_match(model.id) or not _priced(model)):
            continue
        family = _NUMBER.sub("#", _SIZE.sub("", model.id), count=1)
        if family not in newest or _version(model.id) > _version(newest[family]):
            newest[family] = model.id
    majors: dict[str, tuple[int, ...]] = {}
    for model_id in newest.values():
        majors[_series(model_id)] = max(majors.get(_series(model_id), ()), _version(model_id)[:1])
    return tuple(sorted(f"{provider}/{model_id}" for model_id in newest.values()
                        if _version(model_id)[:1] == majors[_series(model_id)]))


def _series(model_id: str) -> str:
    """The letters a model id starts with: ``gpt``, ``o``, ``claude``, ``gemini``."""
    return model_id[:len(model_id) - len(model_id.lstrip("abcdefghijklmnopqrstuvwxyz"))]


def _priced(model: Any) -> bool:
    """Whether the data has a price now for the model's text input and output."""
    try:
        prices = model.get_prices(datetime.now(UTC))
    except (LookupError, ValueError):
        return False
    return prices.input_mtok is not None and prices.output_mtok is not None


class PriceError(ConfigError):
    """A bad row of a ``[prices]`` table: ``keys`` is its path (``prices``, the pattern, the field), ``problem``
    what is wrong, so a caller holding the file's text can name its line."""

    def __init__(self, path: str, keys: tuple[str, ...], problem: str) -> None:
        super().__init__(f'{path}: [prices."{keys[1]}"] {".".join(keys[2:])}: {problem}',
                         "prices are USD per million tokens: input_per_mtok, output_per_mtok, ...")
        self.keys, self.problem = keys, problem


def prices_from(rows: dict[str, Any], path: str) -> PriceBook:
    """A price book from a ``[prices]`` table (``path`` names its file in errors)."""
    from pydantic import ValidationError

    from workbench.core.validate import problem, validated

    user: dict[str, UserPrice] = {}
    for pattern, row in rows.items():
        try:
            user[pattern] = validated(UserPrice, row)
        except ValidationError as exc:
            where, message = problem(exc)
            raise PriceError(path, ("prices", pattern, *filter(None, where.split("."))), message) from None
    return PriceBook(user)


def usd_number(value: Decimal | None, places: int = 8) -> float | None:
    """A dollar amount for JSON: a float rounded to ``places`` (``None`` stays ``None``: unknown, not free)."""
    return None if value is None else float(round(value, places))
