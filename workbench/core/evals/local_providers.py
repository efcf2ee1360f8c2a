"""promptfoo's providers that are not a model API: ``echo`` (the rendered prompt is the output), ``http``/``https``
(any HTTP endpoint: a URL, method, headers and a body rendered with ``{{prompt}}`` and the variables, the output
taken from the reply by ``transformResponse``) and ``file://provider.py`` (a Python ``call_api(prompt, options,
context)`` returning ``{"output": ...}``).

Their cells are answered here, not by a model call: no retries, rate limits nor trace rows (nothing was sent to a
model); their time is measured, their cost is 0 for ``echo`` and unknown otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2

from workbench.core.errors import one_line
from workbench.core.evals.model import LocalProvider, Observation, SuiteTarget
from workbench.core.evals.node_bridge import JavaScriptError, current, js_function, require_node
from workbench.core.evals.python_assert import PythonAssertionError, run_python
from workbench.core.evals.suite_promptfoo import FILE, Context, Src, expect
from workbench.core.evals.transforms import as_output
from workbench.core.providers.base import scrub
from workbench.core.providers.bounds import MAX_REPLY_BYTES
from workbench.core.registry import base_url_problem
from workbench.core.templating import TemplateError, check_syntax, render, template_values
from workbench.core.yaml_lines import Loc

HTTP_TIMEOUT_S = 60.0
PYTHON_TIMEOUT_S = 120.0
_HTTP_KEYS = frozenset({"url", "method", "headers", "body", "queryParams", "transformResponse"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH = re.compile(r"""^(?:json|text|data)(?:\.[A-Za-z_$][\w$]*|\[\d+\]|\["[^"\]]*"\]|\['[^'\]]*'\])*$""")
_FUNCTION = re.compile(r"^(async\s+)?(function\b|\([^()]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")
_CREDENTIAL = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)
_STEP = re.compile(r"""\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\["([^"\]]*)"\]|\['([^'\]]*)'\]""")


# --- loading -----------------------------------------------------------------------------------------------------


def local_target(ctx: Context, src: Src, loc: Loc, text: str, options: Mapping[str, Any], id_loc: Loc,
                 ) -> SuiteTarget | None:
    """The target a non-model provider id names (``echo``, ``http``, ``https``, an http(s) URL,
    ``file://x.py``, ``python:x.py``), or None for a model provider's id."""
    label = options.get("label")
    config = expect(src, (*loc, "config"), options.get("config") or {}, dict, "a mapping of settings")
    config_loc: Loc = (*loc, "config")
    if text == "echo":
        if config:
            raise src.error(config_loc, "the echo provider takes no config", "remove config:")
        provider = LocalProvider("echo")
    elif text in ("http", "https") or text.startswith(("http://", "https://")):
        provider = _http(src, config_loc, config, None if text in ("http", "https") else text)
    elif text.startswith(("python:", FILE)) and text.partition(":")[0] in ("python", "file"):
        path = text.removeprefix("python:").removeprefix(FILE)
        if not path.partition(":")[0].endswith(".py"):
            raise src.error(id_loc, f"provider '{text}' is not supported (JavaScript or other script providers)",
                            "write the provider in Python: file://provider.py with call_api(prompt, options, context)")
        (file,) = ctx.files(src, id_loc, FILE + path.partition(":")[0])
        provider = LocalProvider("python", code=FILE + path, config=config,
                                 digest=_digest(ctx.read(src, id_loc, file), config))
    else:
        return None
    ref = f"{provider.kind}/{text}"
    return SuiteTarget(ref=ref, label=text if label is None else str(label), local=provider)


def _http(src: Src, loc: Loc, config: dict[str, Any], url: str | None) -> LocalProvider:
    for key in config:
        if key not in _HTTP_KEYS:
            raise src.error((*loc, key), f"config.{key} of the http provider cannot be honoured",
                            f"the keys honoured are: {', '.join(sorted(_HTTP_KEYS))}")
    url = config.get("url", url)
    if url is None:
        raise src.error(loc, "the http provider needs config.url", "e.g. url: https://example.com/generate")
    url = str(expect(src, (*loc, "url"), url, str, "a URL"))
    if "{{" not in url and (problem := base_url_problem(url)):
        raise src.error((*loc, "url"), f"{url!r} is not a usable URL: {problem}")
    method = str(expect(src, (*loc, "method"), config.get("method", "POST"), str, "an HTTP method")).upper()
    if method not in _METHODS:
        raise src.error((*loc, "method"), f"method {method} is not supported", f"use one of {', '.join(_METHODS)}")
    headers = {str(k): str(v) for k, v in expect(src, (*loc, "headers"), config.get("headers") or {}, dict,
                                                   "a mapping of header names to values").items()}
    query = {str(k): str(v) for k, v in expect(src, (*loc, "queryParams"), config.get("queryParams") or {}, dict,
                                                 "a mapping of query parameters").items()}
    body = config.get("body")
    for text in (url, *headers.values(), *query.values(), *_strings(body)):
        try:
            check_syntax(text)
        except TemplateError as exc:
            raise src.error(loc, str(exc), "fix the template") from None
    transform = config.get("transformResponse")
    if transform is not None:
        transform = str(expect(src, (*loc, "transformResponse"), transform, str, "an expression or a function"))
        if not _PATH.match(transform.strip()):
            require_node(src.at((*loc, "transformResponse")), "a transformResponse that is not a path such as "
                         "json.choices[0].message.content")
    return LocalProvider("http", url=url, method=method, headers=headers, body=body, query=query,
                         transform_response=transform, digest=_digest("", config))


def _digest(text: str, config: Mapping[str, Any]) -> str:
    data = json.dumps([text, config], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# --- answering ---------------------------------------------------------------------------------------------------


async def local_answer(provider: LocalProvider, prompt: str, variables: Mapping[str, str],
                       base_dir: Path) -> Observation:
    """The provider's answer to ``prompt`` (the rendered prompt as promptfoo hands it to a provider: a text, or a
    chat as JSON) as an observation (an error in ``error``; never raises). Graders on such providers are called
    here too, with their grading prompt."""
    started = time.perf_counter()
    tokens: tuple[int | None, int | None]
    cost: float | None
    try:
        if provider.kind == "echo":
            text, tokens, cost = prompt, (0, 0), 0.0
        elif provider.kind == "http":
            text, tokens, cost = await _http_answer(provider, prompt, variables, base_dir), (None, None), None
        else:
            text, tokens, cost = await _python_answer(provider, prompt, variables, base_dir)
        error = None
    except _Failed as exc:
        text, tokens, cost, error = "", (None, None), None, str(exc)
    return Observation(text=text, finish=None if error else "stop", latency_ms=(time.perf_counter() - started) * 1000,
                       cost_usd=cost, input_tokens=tokens[0], output_tokens=tokens[1], error=error,
                       vars=dict(variables), prompt_text=prompt)


class LocalProviderError(Exception):
    """A grader on such a provider gave no reply: the message is the provider's error."""


class _Failed(Exception):
    """The provider gave no output: the message is the cell's error."""


def _rendered(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, Mapping):
        return {str(k): _rendered(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v, context) for v in value]
    return value


async def _http_answer(provider: LocalProvider, prompt: str, variables: Mapping[str, str], base_dir: Path) -> str:
    context = {**template_values(variables), "prompt": prompt}
    headers = {k: render(v, context) for k, v in provider.headers.items()}
    body = _rendered(provider.body, context)
    content: bytes | None = None
    if isinstance(body, str):
        content = body.encode()
        if not _has(headers, "content-type"):
            headers["content-type"] = "text/plain"
    elif body is not None:
        content = json.dumps(body, ensure_ascii=False).encode()
        if not _has(headers, "content-type"):
            headers["content-type"] = "application/json"
    try:
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.request(provider.method, render(provider.url, context), content=content,
                                            headers=headers, params={k: render(v, context)
                                                                     for k, v in provider.query.items()})
    except httpx2.HTTPError as exc:
        raise _Failed(f"the http provider could not reach {provider.url}: {type(exc).__name__}") from None
    raw = response.content[:MAX_REPLY_BYTES].decode("utf-8", "replace")
    if response.status_code >= 400:
        echo = raw[:8192]
        for name, value in headers.items():  # a server quoting a credential it was sent: never in the error
            if _CREDENTIAL.search(name):
                echo = scrub(echo, value.removeprefix("Bearer ").removeprefix("Basic ").strip())
        raise _Failed(f"the http provider answered HTTP {response.status_code}: {one_line(echo, 300)}")
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = None
    if provider.transform_response is None:
        return as_output(raw if data is None else data)
    return as_output(await _transformed(provider.transform_response, data, raw, base_dir))


def _has(headers: Mapping[str, str], name: str) -> bool:
    return any(k.lower() == name for k in headers)


async def _transformed(code: str, data: Any, text: str, base_dir: Path) -> Any:
    """``transformResponse``: a path (``json.a[0]["b"]``, ``text``) evaluated here; a function in Node."""
    code = code.strip()
    if _PATH.match(code):
        value: Any = text if code.startswith("text") else data
        for step in _STEP.finditer(code[4:]):
            name, index, double, single = step.groups()
            key: Any = int(index) if index is not None else next(k for k in (name, double, single) if k is not None)
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                raise _Failed(f"transformResponse {code}: the reply has no {step.group(0)}") from None
        return value
    if not code.startswith(FILE):  # promptfoo's forms: a function of (json, text), or an expression of them
        called = code if _FUNCTION.match(code) else f"(json, text) => ({code})"
        code = f"return ({called})(json, context);\n"  # the runner hands (json, text) as (json, context)
    try:
        return await current().call(js_function(code, base_dir, param="json"), [data, text])
    except JavaScriptError as exc:
        raise _Failed(f"transformResponse failed: {exc}") from None


async def _python_answer(provider: LocalProvider, prompt: str, variables: Mapping[str, str],
                         base_dir: Path) -> tuple[str, tuple[int | None, int | None], float | None]:
    options = {"id": provider.code, "config": dict(provider.config)}
    context = {"vars": template_values(variables), "prompt": {"raw": prompt}}
    try:
        result = await run_python(provider.code, prompt, context, base_dir=base_dir, time_limit=PYTHON_TIMEOUT_S,
                                  function="call_api", args=[prompt, options, context])
    except PythonAssertionError as exc:
        raise _Failed(f"the python provider failed: {exc}") from None
    if not isinstance(result, dict):
        raise _Failed(f"the python provider returned {type(result).__name__}, not a mapping with output")
    if result.get("error"):
        raise _Failed(f"the python provider returned an error: {result['error']}")
    if "output" not in result:
        raise _Failed("the python provider returned no output")
    usage = result["tokenUsage"] if isinstance(result.get("tokenUsage"), dict) else {}
    cost = result.get("cost")
    return (as_output(result["output"]), (usage.get("prompt"), usage.get("completion")),
            float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None)
