"""promptfoo's transforms: a provider's ``transform``, a test's ``options.transform`` and ``options.transformVars``
(``defaultTest`` gives them to every test), an assertion's ``transform``.

Code is JavaScript, run in Node through the run's bridge (:mod:`workbench.core.evals.node_bridge`): inline (one
line is an expression, several lines a function body) or ``file://x.js[:name]``; or ``file://x.py[:name]`` run
as python assertions are (``get_transform`` by default). Each gets ``(output, context)`` (``transformVars``:
``(vars, context)``) and returns the new value. The order is promptfoo's: ``transformVars`` before the prompt
is rendered (the mapping it returns merged into the variables); the provider's transform, then the test's, on
the output every assertion grades; an assertion's transform on the output it alone grades. An output that
is not text becomes its JSON (as ``JSON.stringify``) for the text checks, and stays the structure for code.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.core.evals.model import AssertionSpec, Observation, SuiteTarget, TestCase
from workbench.core.evals.node_bridge import DEFAULT_TIMEOUT_S, JavaScriptError, current, js_function, require_node
from workbench.core.evals.python_assert import PythonAssertionError, run_python
from workbench.core.templating import StructuredVar, template_values

PYTHON_FUNCTION = "get_transform"
_PYTHON_FILE = re.compile(r"^file://.+\.py(?::[A-Za-z_]\w*)?$")


class TransformError(Exception):
    """A transform that gave no usable value; the message is one line."""


def is_python(code: str) -> bool:
    return _PYTHON_FILE.match(code.strip()) is not None


def _every_assertion(specs: tuple[AssertionSpec, ...]) -> Iterator[AssertionSpec]:
    for spec in specs:
        yield spec
        yield from _every_assertion(spec.assertions)


def needs_node(test: TestCase) -> bool:
    """Whether the test runs JavaScript: a ``javascript`` assertion, or a transform that is not Python."""
    specs = list(_every_assertion(test.assertions))
    codes = [test.transform, test.transform_vars, *(spec.transform for spec in specs)]
    return any(spec.type == "javascript" for spec in specs) or any(c is not None and not is_python(c) for c in codes)


def require_node_for(tests: tuple[TestCase, ...]) -> None:
    """A :class:`ConfigError` at the first test that runs JavaScript when ``node`` is not on PATH."""
    first = next((test for test in tests if needs_node(test)), None)
    if first is not None:
        require_node(first.source, f"test '{first.key}' runs JavaScript: it")


def require_node_for_target(where: str, code: str) -> None:
    if not is_python(code):
        require_node(where, "the provider's transform is JavaScript: it")


async def run_transform(code: str, value: Any, context: dict[str, Any], *, base_dir: Path,
                        param: str = "output") -> Any:
    """What the transform returned for ``value``; raises :class:`TransformError`."""
    try:
        if is_python(code):
            result = await run_python(code.strip(), value, context, base_dir=base_dir, time_limit=DEFAULT_TIMEOUT_S,
                                      function=PYTHON_FUNCTION)
        else:
            result = await current().call(js_function(code, base_dir, param=param), [value, context])
    except (JavaScriptError, PythonAssertionError) as exc:
        raise TransformError(str(exc)) from None
    if result is None:
        raise TransformError("it returned nothing")
    return result


def as_output(value: Any) -> str:
    """A transform's result as the output: text as it is; anything else its JSON, carrying the structure."""
    if isinstance(value, str):
        return value
    return StructuredVar(value, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def output_value(text: str) -> Any:
    """The output as code sees it: the structure a transform returned, else the text."""
    return text.data if isinstance(text, StructuredVar) else text


def _context(obs: Observation) -> dict[str, Any]:
    return {"vars": template_values(obs.vars), "prompt": {"raw": obs.prompt_text}}


async def transformed_vars(test: TestCase, prompt_label: str, base_dir: Path) -> Mapping[str, str]:
    """The test's variables with what its ``transformVars`` returned merged in (the test's own without one)."""
    if test.transform_vars is None:
        return test.vars
    context = {"prompt": {"label": prompt_label}, "uuid": str(uuid.uuid4())}
    result = await run_transform(test.transform_vars, template_values(test.vars), context, base_dir=base_dir,
                                 param="vars")
    if not isinstance(result, dict):
        raise TransformError(f"transformVars returned a {type(result).__name__}, not a mapping of variables")
    return {**test.vars, **{str(name): _variable(value) for name, value in result.items()}}


def _variable(value: Any) -> str:
    if isinstance(value, str):
        return value
    return StructuredVar(value) if isinstance(value, dict | list) else json.dumps(value)


async def transformed_output(obs: Observation, target: SuiteTarget, test: TestCase, base_dir: Path) -> Observation:
    """The observation every assertion grades: the provider's transform, then the test's (a failed call as it is)."""
    return await _transformed(obs, (target.transform, test.transform), base_dir)


async def assertion_output(spec: AssertionSpec, obs: Observation, base_dir: Path) -> Observation:
    """The observation ``spec`` grades: its own transform applied."""
    return await _transformed(obs, (spec.transform,), base_dir)


async def _transformed(obs: Observation, codes: tuple[str | None, ...], base_dir: Path) -> Observation:
    if obs.error is not None or not any(codes):
        return obs
    text = obs.text
    for code in codes:
        if code:
            text = as_output(await run_transform(code, output_value(text), _context(obs), base_dir=base_dir))
    return dataclasses.replace(obs, text=text)
