"""promptfoo's ``derivedMetrics``: a named formula over a column's named scores (``true_positives /
(true_positives + false_positives)``), written into that column's ``metrics.namedScores`` of promptfoo's JSON
output once its results are in.

A column's named scores are the sums of its results' (:func:`~workbench.core.evals.report_outputs.named_scores`);
the formulas are read in order, each seeing the ones before it, as promptfoo's ``mathjs`` reads them: numbers,
names, ``+ - * / ^ %``, parentheses and ``sqrt abs min max log exp round floor ceil``. A formula naming a score
the column lacks gives 0 (promptfoo leaves the metric at 0 when ``mathjs`` throws); a division by zero gives no
number (``null``, as ``JSON.stringify`` writes ``Infinity`` and ``NaN``)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: lambda a, b: _divide(a, b),
    ast.Pow: lambda a, b: float(a) ** b, ast.Mod: lambda a, b: math.fmod(a, b) if b else math.nan,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "min": min, "max": max, "log": math.log, "exp": math.exp, "round": round,
    "floor": math.floor, "ceil": math.ceil,
}


class FormulaError(ValueError):
    """A formula that is not one (its reason in one line)."""


def check_formula(text: str) -> None:
    """Raise :class:`FormulaError` unless ``text`` is a formula :func:`evaluate` reads."""
    _node_check(_parse(text))


def evaluate(text: str, scores: Mapping[str, float]) -> float | None:
    """The formula's value over ``scores``: 0 when it names a score not there, None when it is not a finite number."""
    try:
        value = float(_value(_parse(text).body, scores))
    except (KeyError, ValueError, OverflowError, ZeroDivisionError):
        return 0.0
    return value if math.isfinite(value) else None


def derived(formulas: tuple[tuple[str, str], ...], scores: Mapping[str, float]) -> dict[str, float | None]:
    """``scores`` with each formula's value under its name, in order (each formula sees the ones before it)."""
    out: dict[str, float | None] = dict(scores)
    for name, text in formulas:
        known = {k: v for k, v in out.items() if v is not None}
        out[name] = evaluate(text, known)
    return out


def _parse(text: str) -> ast.Expression:
    try:
        return ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a formula: {exc.msg}") from None


def _node_check(node: ast.AST) -> None:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            if not isinstance(child.func, ast.Name) or child.func.id not in _FUNCTIONS or child.keywords:
                raise FormulaError(f"only these functions: {', '.join(_FUNCTIONS)}")
        elif isinstance(child, ast.BinOp):
            if type(child.op) not in _BINARY:
                raise FormulaError("only + - * / ^ % between values")
        elif isinstance(child, ast.UnaryOp):
            if not isinstance(child.op, ast.UAdd | ast.USub):
                raise FormulaError("only + and - before a value")
        elif isinstance(child, ast.Constant):
            if isinstance(child.value, bool) or not isinstance(child.value, int | float):
                raise FormulaError(f"{child.value!r} is not a number")
        elif not isinstance(child, ast.Expression | ast.Name | ast.Load | ast.operator | ast.unaryop):
            raise FormulaError(f"'{ast.unparse(child)}' is not arithmetic over named scores")


def _value(node: ast.expr, scores: Mapping[str, float]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scores[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _value(node.operand, scores)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_value(node.left, scores), _value(node.right, scores))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCTIONS[node.func.id](*(_value(arg, scores) for arg in node.args))
    raise ValueError(ast.unparse(node))


def _divide(a: float, b: float) -> float:
    if b:
        return a / b
    return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
