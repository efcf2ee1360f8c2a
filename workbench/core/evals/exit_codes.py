"""promptfoo's environment variables for a CI gate, honoured when the suite is a promptfoo config:
``PROMPTFOO_FAILED_TEST_EXIT_CODE`` (the exit code of a failed run) and ``PROMPTFOO_PASS_RATE_THRESHOLD`` (the pass
rate, in percent, a run must reach). A value that is not one is a :class:`ConfigError`, before any call."""

from __future__ import annotations

import math
from collections.abc import Mapping

from workbench.core.errors import ConfigError
from workbench.core.evals.model import Suite

FAILED_EXIT_VARIABLE = "PROMPTFOO_FAILED_TEST_EXIT_CODE"
PASS_RATE_VARIABLE = "PROMPTFOO_PASS_RATE_THRESHOLD"


def promptfoo_exit(suite: Suite, env: Mapping[str, str]) -> tuple[int | None, float | None]:
    """The exit code of a failed run and the gate (0..1) that promptfoo's variables in ``env`` give ``suite``;
    None for each not set (or for a suite that is not promptfoo's)."""
    if not suite.promptfoo:
        return None, None
    return _exit_code(env.get(FAILED_EXIT_VARIABLE, "").strip()), _pass_rate(env.get(PASS_RATE_VARIABLE, "").strip())


def _exit_code(text: str) -> int | None:
    if not text:
        return None
    try:
        code = int(text)
    except ValueError:
        code = -1
    if not 0 <= code <= 255:
        raise ConfigError(f"{FAILED_EXIT_VARIABLE}={text} is not an exit code (a whole number from 0 to 255)",
                          "set it to e.g. 100 (promptfoo's), or unset it")
    return code


def _pass_rate(text: str) -> float | None:
    if not text:
        return None
    try:
        percent = float(text)
    except ValueError:
        percent = math.nan
    if not 0 <= percent <= 100:
        raise ConfigError(f"{PASS_RATE_VARIABLE}={text} is not a pass rate (a percentage from 0 to 100)",
                          "set it to e.g. 95 for a 95% pass rate, or unset it")
    return percent / 100
