"""The ``javascript`` assertion, as promptfoo runs it: code given ``output`` and ``context``, in Node.

The value is an expression (``output.length < 100``), a function body with ``return`` (several lines), or
``file://check.js`` (its default export) / ``file://check.js:name``. ``context`` holds ``vars``, ``prompt``
(the rendered prompt as promptfoo sent it: a text prompt's text, a chat as JSON), ``test`` (its ``vars`` and
``metadata``), ``config`` (the assertion's) and ``providerResponse`` (``output``, ``tokenUsage``, ``cost``,
``finishReason``); ``logProbs`` and ``provider`` are absent (undefined). It returns a boolean, a number (the
score: it passes at ``threshold`` or, without one, above 0) or ``{pass, score, reason}``. ``config.timeout``
(seconds) bounds one call (10 s by default).
"""

from __future__ import annotations

from typing import Any

from workbench.core.evals.checks import Check, CheckFn, Context, Unusable, quote
from workbench.core.evals.node_bridge import DEFAULT_TIMEOUT_S, JavaScriptError, current, js_function
from workbench.core.evals.python_assert import PythonAssertionError, interpret
from workbench.core.evals.transforms import output_value
from workbench.core.templating import template_values


def javascript_context(ctx: Context) -> dict[str, Any]:
    """promptfoo's ``context`` of a code assertion (``javascript``, ``python``)."""
    obs = ctx.obs
    variables = template_values(obs.vars)
    usage = {"prompt": obs.input_tokens, "completion": obs.output_tokens,
             "total": None if obs.input_tokens is None or obs.output_tokens is None
             else obs.input_tokens + obs.output_tokens, **obs.completion_details()}
    return {
        "vars": variables, "prompt": obs.prompt_text, "test": {"vars": variables, "metadata": obs.metadata},
        "config": ctx.spec.config,  # logProbs and provider: none here, so absent (promptfoo's undefined)
        "providerResponse": {"output": output_value(obs.text), "tokenUsage": usage, "cost": obs.cost_usd,
                             "finishReason": obs.finish},
    }


async def _javascript(ctx: Context) -> Check:
    code = ctx.value
    if not isinstance(code, str) or not code.strip():
        raise Unusable("javascript needs code as its value (an expression, a function body or file://x.js)")
    limit = float(ctx.spec.config.get("timeout", DEFAULT_TIMEOUT_S))
    try:
        function = js_function(code, ctx.base_dir, assertion=True)
        result = await current().call(function, [output_value(ctx.obs.text), javascript_context(ctx)],
                                      time_limit=limit)
        passed, score, reason = interpret(result, ctx.spec.threshold)
    except (JavaScriptError, PythonAssertionError) as exc:
        raise Unusable(f"javascript: {exc}") from None
    threshold = "" if ctx.spec.threshold is None else f" with score >= {ctx.spec.threshold:g}"
    # promptfoo negates a returned number or {pass, score} by its pass alone: the score stays
    negated = None if isinstance(result, bool) else score
    return Check(passed, score, f"{quote(code.strip(), 80)} to pass{threshold}", reason, negated)


JAVASCRIPT: dict[str, CheckFn] = {"javascript": _javascript}
