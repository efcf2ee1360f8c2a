"""promptfoo's environment variables, honoured when the suite is a promptfoo config: for a CI gate,
``PROMPTFOO_FAILED_TEST_EXIT_CODE`` (the exit code of a failed run) and ``PROMPTFOO_PASS_RATE_THRESHOLD`` (the pass
rate, in percent, a run must reach); for time, ``PROMPTFOO_EVAL_TIMEOUT_MS`` and ``PROMPTFOO_MAX_EVAL_TIME_MS`` (the
defaults of ``evaluateOptions.timeoutMs`` and ``maxEvalTimeMs``). A value that is not one is a :class:`ConfigError`,
before any call."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from workbench.core.errors import ConfigError
from workbench.core.evals.model import RunLimits, Suite

FAILED_EXIT_VARIABLE = "PROMPTFOO_FAILED_TEST_EXIT_CODE"
PASS_RATE_VARIABLE = "PROMPTFOO_PASS_RATE_THRESHOLD"
TIMEOUT_VARIABLE = "PROMPTFOO_EVAL_TIMEOUT_MS"
MAX_TIME_VARIABLE = "PROMPTFOO_MAX_EVAL_TIME_MS"


def promptfoo_limits(suite: Suite, env: Mapping[str, str]) -> RunLimits:
    """``suite``'s limits, with promptfoo's variables in ``env`` for the time limits its ``evaluateOptions`` does not
    set (an explicit 0 there keeps no limit, as in promptfoo)."""
    limits = suite.limits
    if not suite.promptfoo:
        return limits
    timeout = _ms(TIMEOUT_VARIABLE, env.get(TIMEOUT_VARIABLE, "").strip())
    most = _ms(MAX_TIME_VARIABLE, env.get(MAX_TIME_VARIABLE, "").strip())
    return dataclasses.replace(
        limits, timeout_ms=timeout if limits.timeout_ms is None else limits.timeout_ms,
        max_eval_time_ms=most if limits.max_eval_time_ms is None else limits.max_eval_time_ms)


def _ms(name: str, text: str) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name}={text} is not a time (a whole number of milliseconds, 0 or more)",
                          "set it to e.g. 30000, or unset it")
    return value


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
