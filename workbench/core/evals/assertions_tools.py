"""Tool calls: ``tool-call-f1`` (promptfoo's set F1 of the tool names called against the expected ones),
``is-valid-openai-tools-call`` / ``is-valid-openai-function-call`` (each call's arguments checked against the
JSON schema of the function it names), and workbench's own ``tool-call`` (a call of that name whose arguments
hold the expected ones).

The calls graded are the reply's own tool calls when it made any (:attr:`Observation.tool_calls`); otherwise the
output read as tool calls in JSON text: OpenAI's ``tool_calls`` list (or ``{"tool_calls": [...]}``), a
function call ``{"name", "arguments"}``, Anthropic's ``tool_use`` blocks, Gemini's ``functionCall`` parts, or
``{"name": ...}`` items. The functions to check against are the assertion's ``value`` or ``config.tools``
(``config.functions``), else the tools the request declared (its provider's ``config.tools``, as promptfoo
reads them), else the test's ``tools`` (``functions``) variable: OpenAI's ``tools`` list or a list of function
definitions ``{name, parameters}``.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from workbench.core.evals.checks import Check, CheckFn, Context, Unusable, pass_fail, quote, texts
from workbench.core.evals.tool_replies import parsed_arguments


def tool_names(data: Any) -> set[str]:
    """The names of the tools called in ``data`` (every format promptfoo's ``tool-call-f1`` reads)."""
    names: set[str] = set()
    if isinstance(data, dict):
        if isinstance(data.get("tool_calls"), list):
            for call in data["tool_calls"]:
                names |= _call_names(call)
        elif isinstance(data.get("toolCall"), dict) and isinstance(data["toolCall"].get("functionCalls"), list):
            names |= {c["name"] for c in data["toolCall"]["functionCalls"]
                      if isinstance(c, dict) and isinstance(c.get("name"), str)}
        else:
            names |= _call_names(data)
    elif isinstance(data, list):
        for item in data:
            names |= _call_names(item)
    return names


def _call_names(item: Any) -> set[str]:
    if not isinstance(item, dict):
        return set()
    for nested in ("function", "functionCall"):
        if isinstance(item.get(nested), dict) and isinstance(item[nested].get("name"), str):
            return {item[nested]["name"]}
    return {item["name"]} if isinstance(item.get("name"), str) else set()


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def _tool_call_f1(ctx: Context) -> Check:
    """F1 of the called tool names against the expected ones (threshold 1.0 by default); negated, the score stays
    the F1, as in promptfoo."""
    expected = set(texts(ctx))
    calls = ctx.obs.tool_calls
    actual = {call["name"] for call in calls} if calls else tool_names(_parsed(ctx.obs.text))
    common = len(expected & actual)
    precision = common / len(actual) if actual else 0.0
    recall = common / len(expected)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    threshold = ctx.spec.threshold if ctx.spec.threshold is not None else 1.0
    found = (f"F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f}); called "
             f"[{', '.join(sorted(actual)) or 'none'}]")
    return Check(f1 >= threshold, f1, f"tool calls [{', '.join(sorted(expected))}] with F1 >= {threshold:g}",
                 found, negated_score=f1)


def _functions(ctx: Context, key: str) -> list[dict[str, Any]]:
    """The function definitions to check against (see the module docstring)."""
    source: Any = ctx.value if ctx.value is not None else ctx.spec.config.get(key, ctx.spec.config.get("tools"))
    if source is None and ctx.tools:
        source = list(ctx.tools)
    if source is None:
        source = ctx.obs.vars.get(key, ctx.obs.vars.get("tools"))
    if isinstance(source, str):
        source = _parsed(source)
    if not isinstance(source, list) or not source:
        raise Unusable(f"{ctx.spec.label} needs the tools: set the provider's config.tools, the assertion's value "
                       f"(or config.{key}), or a '{key}' variable, to a list of function definitions")
    functions = [item["function"] if isinstance(item, dict) and isinstance(item.get("function"), dict) else item
                 for item in source]
    if not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        raise Unusable(f"{ctx.spec.label}: every tool needs a function with a name")
    return functions


def _call_problem(call: Any, functions: list[dict[str, Any]]) -> str | None:
    """Why ``call`` (``{name, arguments}``) is not a valid call of one of ``functions``, or None."""
    name = call.get("name")
    schema = next((f.get("parameters") for f in functions if f["name"] == name), False)
    if schema is False:
        return f'Called "{name}", but there is no function with that name'
    arguments = call.get("arguments")
    if isinstance(arguments, str):
        arguments = _parsed(arguments)
    if schema is None:
        return None
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = best_match(validator.iter_errors(arguments))
    except jsonschema.SchemaError as exc:
        return f'function "{name}" has an invalid schema: {exc.message}'
    return None if error is None else f'Call to "{name}" does not match schema: {error.json_path}: {error.message}'


def _reply_calls(ctx: Context) -> list[dict[str, Any]]:
    """The reply's own tool calls in OpenAI's ``tool_calls`` form (empty when it made none)."""
    return [{"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
            for call in ctx.obs.tool_calls]


async def _is_valid_tools_call(ctx: Context) -> Check:
    data = _parsed(ctx.obs.text)
    calls = _reply_calls(ctx) or (data.get("tool_calls") if isinstance(data, dict) else data)
    shaped = isinstance(calls, list) and bool(calls) and all(
        isinstance(c, dict) and isinstance(c.get("function"), dict) and isinstance(c["function"].get("name"), str)
        and isinstance(c["function"].get("arguments"), str) for c in calls)
    expected = "tool calls matching the tools' schemas"
    if not shaped or not isinstance(calls, list):
        return pass_fail(False, expected, f"not a valid-looking tools response: {quote(ctx.obs.text)}")
    functions = _functions(ctx, "tools")
    problems = [p for c in calls if (p := _call_problem(c["function"], functions)) is not None]
    return pass_fail(not problems, expected, problems[0] if problems else f"{len(calls)} valid call(s)")


async def _is_valid_function_call(ctx: Context) -> Check:
    if ctx.obs.tool_calls:  # the reply's calls: each one a valid call
        functions = _functions(ctx, "functions")
        problems = [p for c in _reply_calls(ctx) if (p := _call_problem(c["function"], functions)) is not None]
        return pass_fail(not problems, "function calls matching the functions' schemas",
                         problems[0] if problems else f"{len(ctx.obs.tool_calls)} valid call(s)")
    data = _parsed(ctx.obs.text)
    call = data.get("function_call", data) if isinstance(data, dict) else None
    expected = "a function call matching the function's schema"
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return pass_fail(False, expected, f"not a function call: {quote(ctx.obs.text)}")
    problem = _call_problem(call, _functions(ctx, "functions"))
    return pass_fail(problem is None, expected, problem or f"a valid call of {call['name']!r}")


def _expected_calls(ctx: Context) -> list[dict[str, Any]]:
    """``tool-call``'s value: one ``{name, arguments}`` (arguments optional) or a list of them."""
    value = _parsed(ctx.value) if isinstance(ctx.value, str) else ctx.value
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, dict) and isinstance(item.get("name"), str)
                            and isinstance(item.get("arguments", {}), dict) and set(item) <= {"name", "arguments"}
                            for item in items):
        raise Unusable("tool-call needs {name: ..., arguments: {...}} (arguments optional), or a list of them")
    return items


def holds(actual: Any, expected: Any) -> bool:
    """Does ``actual`` hold ``expected``: a mapping holds every key of it (each value held in turn); anything else
    is equal."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and holds(actual[k], v) for k, v in expected.items())
    return bool(actual == expected and type(actual) is type(expected)) or (
        isinstance(actual, int | float) and isinstance(expected, int | float)
        and not isinstance(actual, bool) and not isinstance(expected, bool) and actual == expected)


def output_calls(data: Any) -> list[dict[str, str]]:
    """The tool calls written in an output's JSON ``data`` (``{name, arguments}``, the arguments as JSON text): OpenAI's
    ``tool_calls`` items (or ``{"tool_calls": [...]}``), Responses ``function_call`` items, Anthropic's ``tool_use``
    blocks, Gemini's ``functionCall`` parts, or ``{name, arguments}`` items."""
    items = data.get("tool_calls", [data]) if isinstance(data, dict) else data if isinstance(data, list) else []
    calls = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        inner = item.get("function") if isinstance(item.get("function"), dict) else item.get("functionCall")
        call = inner if isinstance(inner, dict) else item
        arguments: Any = next((call[key] for key in ("arguments", "input", "args") if key in call), {})
        if isinstance(call.get("name"), str):
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            calls.append({"name": call["name"], "arguments": text})
    return calls


async def _tool_call(ctx: Context) -> Check:
    """workbench's own: for each expected ``{name, arguments}`` the reply made a call of that name whose arguments
    (parsed JSON) hold the expected ones (a subset: other arguments may be there too). A reply that made no tool
    call is read for calls written in its JSON output (:func:`output_calls`: a transform's, a local provider's)."""
    expected = _expected_calls(ctx)
    calls = ctx.obs.tool_calls or output_calls(_parsed(ctx.obs.text))
    missing = [item for item in expected
               if not any(call["name"] == item["name"] and holds(parsed_arguments(call), item.get("arguments", {}))
                          for call in calls)]
    made = "; ".join(f"{call['name']}({call['arguments']})" for call in calls) or "no tool call"
    wanted = "; ".join(f"{item['name']}({json.dumps(item.get('arguments', {}), ensure_ascii=False)})"
                       for item in expected)
    return pass_fail(not missing, f"a call of {wanted}", f"no call of {missing[0]['name']} with those arguments; "
                     f"called {made}" if missing else made)


CHECKS: dict[str, CheckFn] = {
    "tool-call": _tool_call,
    "tool-call-f1": _tool_call_f1,
    "is-valid-openai-tools-call": _is_valid_tools_call,
    "is-valid-openai-function-call": _is_valid_function_call,
}
