"""The pieces several commands' arguments share: value types (a bounded number, a regular expression, a rate, a
length of time, a call id), help texts and the ``--workspace`` option. Only argparse here (see :mod:`.arguments`)."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

Subparsers = Any
"""What ``ArgumentParser.add_subparsers()`` returns (argparse's type for it is private)."""

CONFIG_HELP = "the workspace configuration (default: the nearest workbench.toml up from here, if any)"

TEAM_HELP = "read the team store (PostgreSQL: [team] url or WORKBENCH_TEAM_URL) instead of the local one"


def number(low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high`` (no upper bound when ``None``)."""
    span = f"from {low:g} to {high:g}" if high is not None else f"of {low:g} or more"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"{text}: expected a number {span}")
        return value

    return parse


def call_id(text: str) -> str:
    """An argparse type: a trace log call id (a ULID: 26 characters of Crockford's base32), upper-cased as stored."""
    if re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", text.upper()) is None:
        raise argparse.ArgumentTypeError(f"{text}: not a call id (26 characters, as `workbench traces list` prints "
                                         "them); a date or an age goes to --until")
    return text.upper()


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no upper bound when ``None``)."""
    span = f"from {low} to {high}" if high is not None else f"of {low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: expected a whole number {span}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text}: expected a whole number {span}")
        return value

    return parse


def regex(text: str) -> re.Pattern[str]:
    """An argparse type: a regular expression (Python's syntax)."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text}: not a regular expression ({exc})") from None


_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")

MAX_LOAD_RATE = 10_000.0
"""The fastest ``workbench load --rate``, per second."""

MAX_LOAD_WORKERS = 4096
"""The most workers of ``workbench load --concurrency``."""


def rate(text: str) -> float:
    """An argparse type: arrivals per second, written ``50``, ``50/s``, ``600/m`` or ``600/min``."""
    count, _, unit = text.strip().partition("/")
    per = _PER.get(unit.strip() or "s")
    try:
        value = float(count) / per if per is not None else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_LOAD_RATE):
        raise argparse.ArgumentTypeError(f"{text}: expected a rate such as 50/s or 600/m, above 0 and at most "
                                         f"{MAX_LOAD_RATE:,.0f}/s")
    return value


def seconds(text: str) -> float:
    """An argparse type: a length of time, written ``60s``, ``2m``, ``500ms``, ``1h`` or ``90`` (seconds)."""
    match = _SPAN.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text}: expected a length of time such as 60s, 2m or 500ms")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match[2] or "s"]
    return float(match[1]) * scale


def workspace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="DIR",
                        help="the workspace (default: the nearest folder up from here with a workbench.toml)")
