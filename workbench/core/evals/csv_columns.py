"""One row of promptfoo's CSV tests file as a test mapping: columns are variables but for the reserved ones,
``__expected[N]`` (assertions in promptfoo's shorthand), ``__description``, ``__threshold``, ``__metric``,
``__prefix`` / ``__suffix`` (``options``), ``__metadata:KEY`` (``KEY[]``: a list, split at commas not escaped
``\\,``) and ``__config:__expected[N]:threshold`` (the threshold of that assertion, also set in the metadata)."""

from __future__ import annotations

import re
from typing import Any

from workbench.core.evals.suite_promptfoo import Src, shorthand

_CONFIG = re.compile(r"^__config:__expected(\d*):(.+)$")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def csv_test(src: Src, cells: dict[str, str]) -> dict[str, Any]:
    """The test a row's ``cells`` (by column) write."""
    test: dict[str, Any] = {"vars": {}, "assert": [], "options": {}, "metadata": {}}
    metric = cells.get("__metric") or None
    thresholds: dict[int, float] = {}
    for column, cell in cells.items():
        if column.startswith("__expected"):
            if cell.strip():
                test["assert"].append({**shorthand(src, (), cell), **({"metric": metric} if metric else {})})
        elif column in ("__prefix", "__suffix"):
            if cell:
                test["options"][column.removeprefix("__")] = cell
        elif column.startswith("__metadata:"):
            _metadata(test["metadata"], column.removeprefix("__metadata:"), cell)
        elif column.startswith("__config:"):
            index, threshold = _config(src, column, cell)
            if threshold is not None:
                thresholds[index] = threshold
        elif column in ("__providerOutput", "__provider_output"):
            raise src.error((), f"column {column}: a fixed output instead of a call is not supported",
                            "leave the column out; every test calls its targets")
        elif column == "__description":
            if cell:
                test["description"] = cell
        elif column == "__threshold":
            if cell.strip():
                test["threshold"] = _number(src, column, cell)
        elif column != "__metric":
            test["vars"][column] = cell
    for index, threshold in thresholds.items():
        if index >= len(test["assert"]):
            raise src.error((), f"__config sets the threshold of assertion {index + 1}, and the row has "
                                f"{len(test['assert'])}", "fill its __expected column, or empty the __config cell")
        test["assert"][index]["threshold"] = threshold
        test["metadata"]["threshold"] = threshold
    return test


def _metadata(metadata: dict[str, Any], key: str, cell: str) -> None:
    if not cell.strip():
        return
    if key.endswith("[]"):
        metadata[key.removesuffix("[]")] = [part.strip().replace("\\,", ",") for part in _UNESCAPED_COMMA.split(cell)]
    else:
        metadata[key] = cell


def _config(src: Src, column: str, cell: str) -> tuple[int, float | None]:
    match = _CONFIG.match(column)
    if match is None or match[2] != "threshold" or match[1] == "0":
        raise src.error((), f"column {column} is not __config:__expected:threshold or __config:__expectedN:threshold",
                        "the only setting a __config column takes is an assertion's threshold")
    index = int(match[1]) - 1 if match[1] else 0
    return index, _number(src, column, cell) if cell.strip() else None


def _number(src: Src, column: str, cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise src.error((), f"{column} '{cell}' is not a number") from None
