"""A suite's run settings in promptfoo's words: ``evaluateOptions`` (``timeoutMs``, ``maxEvalTimeMs``, ``delay``,
``cache``), a provider's ``delay`` and the top-level ``outputPath``, read and checked at their ``file:line``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from workbench.core.evals.model import RunLimits
from workbench.core.evals.report_outputs import OUTPUT_FORMATS
from workbench.core.evals.suite_promptfoo import Src, expect
from workbench.core.yaml_lines import Loc


def run_limits(src: Src, options: dict[str, Any]) -> RunLimits:
    """``evaluateOptions``' time limits (ms, 0 is none, as in promptfoo; None when not set), ``delay`` (ms) and
    ``cache``."""
    cache = options.get("cache", True)
    if cache is not None:
        expect(src, ("evaluateOptions", "cache"), cache, bool, "true or false")
    return RunLimits(timeout_ms=_ms(src, options, "timeoutMs"), max_eval_time_ms=_ms(src, options, "maxEvalTimeMs"),
                     delay_ms=_ms(src, options, "delay") or 0, cache=cache is not False)


def target_delay(src: Src, loc: Loc, options: dict[str, Any]) -> int:
    """A provider's ``delay``: milliseconds waited after each call made to it."""
    return _ms(src, options, "delay", loc) or 0


def _ms(src: Src, options: dict[str, Any], key: str, loc: Loc = ("evaluateOptions",)) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise src.error((*loc, key), f"{key} must be a number of milliseconds, 0 or more, not {value!r}",
                        f"e.g. {key}: 30000 (0: none)")
    return math.ceil(float(value))


def output_paths(src: Src, value: Any) -> tuple[str, ...]:
    """promptfoo's ``outputPath``: one file or a list, each with an extension ``-o`` knows."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else expect(src, ("outputPath",), value, list, "a file or a list")
    out = []
    for i, item in enumerate(items):
        loc = ("outputPath",) if isinstance(value, str) else ("outputPath", i)
        text = expect(src, loc, item, str, "a file name such as results.json")
        if Path(text).suffix.lower() not in OUTPUT_FORMATS:
            raise src.error(loc, f"outputPath {text}: unknown output format '{Path(text).suffix or '(no extension)'}'",
                            f"name the file {', '.join(sorted(dict.fromkeys(OUTPUT_FORMATS)))}")
        out.append(text)
    return tuple(dict.fromkeys(out))
