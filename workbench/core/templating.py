"""Nunjucks-compatible templates: promptfoo's templating, on Jinja2's sandbox.

promptfoo renders prompts, templated variable values and assertion values with Nunjucks; Jinja2 has the same
syntax (``{{ x | upper }}``, ``{% if %}``, ``{% for %}``, ``{# #}``). Where the two differ, Nunjucks wins:

* an unset variable renders empty (and loops over nothing); reading a member of it is unset too. The names
  rendered while unset are collected into the ``missing`` set a caller passes;
* ``dump`` is ``JSON.stringify`` (compact, with an optional indent), ``title`` capitalises each
  space-separated word, ``reverse`` gives a list, ``truncate`` has no leeway;
* a boolean prints as ``true``/``false``, as JavaScript prints it;
* a list or mapping printed as is renders as JSON (Nunjucks would print ``[object Object]``).

The sandbox refuses what a template must never reach (``{{ ''.__class__ }}`` raises :class:`TemplateError`).
Each distinct source is compiled once: a suite of many cases renders the same few prompts over and over.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

_MARKERS = ("{{", "{%", "{#")
_COMPILED = 4096
"""Distinct template sources kept compiled."""
_missing: ContextVar[set[str] | None] = ContextVar("missing_variables", default=None)


class TemplateError(Exception):
    """A template that cannot be compiled or rendered; the message is one line."""


class StructuredVar(str):
    """A variable written as a list or mapping: its JSON text (what keys, digests and stores see) that
    templates and code read as the structure itself."""

    __slots__ = ("data",)
    data: Any

    def __new__(cls, data: Any, text: str | None = None) -> StructuredVar:
        value = super().__new__(cls, json.dumps(data, ensure_ascii=False) if text is None else text)
        value.data = data
        return value


def has_template(text: str) -> bool:
    """Whether ``text`` holds template syntax at all (most values do not, and are used as they are)."""
    return any(marker in text for marker in _MARKERS)


def has_tags(text: str) -> bool:
    """Whether ``text`` holds ``{% %}`` or ``{# #}`` tags (more than ``{{ }}`` substitutions)."""
    return "{%" in text or "{#" in text


def render(source: str, variables: Mapping[str, Any], missing: set[str] | None = None) -> str:
    """``source`` rendered with ``variables`` (structured ones as their structure); the names of unset
    variables it rendered are added to ``missing``."""
    if not has_template(source):
        return source
    template = _compiled(source)
    token = _missing.set(missing)
    try:
        return template.render(template_values(variables))
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(f"refused by the template sandbox: {exc}") from None
    except Exception as exc:  # a filter given the wrong type, a call of something unset, ...
        raise TemplateError(f"the template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _missing.reset(token)


def template_values(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The values a template (or code) sees: structured variables as their structure."""
    return {name: value.data if isinstance(value, StructuredVar) else value for name, value in variables.items()}


def check_syntax(source: str) -> None:
    """Raise :class:`TemplateError` when ``source`` does not compile."""
    if has_template(source):
        _compiled(source)


# --- the environment ---------------------------------------------------------------------------------------------


class _Unset(jinja2.ChainableUndefined):
    """An unset variable (or a member of one): empty when rendered, nothing to loop over. A top-level
    name rendered or looped over is recorded as missing."""

    __slots__ = ("variable",)

    def __init__(self, hint: str | None = None, obj: Any = jinja2.utils.missing, name: str | None = None,
                 exc: type[jinja2.exceptions.TemplateRuntimeError] = jinja2.exceptions.UndefinedError) -> None:
        super().__init__(hint, obj, name, exc)
        self.variable = name if obj is jinja2.utils.missing else None

    def _note(self) -> None:
        missing = _missing.get()
        if missing is not None and self.variable is not None:
            missing.add(self.variable)

    def __str__(self) -> str:
        self._note()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._note()
        return iter(())


class _Sandbox(SandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} is unsafe")


def _finalize(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False)
    return value


def _dump(value: Any, indent: int | str | None = None) -> str:
    if isinstance(value, jinja2.Undefined):
        return ""
    if indent is None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _title(value: Any) -> str:
    return " ".join(word[:1].upper() + word[1:].lower() for word in str(value).split(" "))


def _reverse(value: Any) -> Any:
    if isinstance(value, str):
        return value[::-1]
    return list(reversed(list(value)))


def _environment() -> SandboxedEnvironment:
    env = _Sandbox(undefined=_Unset, finalize=_finalize, autoescape=False, keep_trailing_newline=True)
    env.filters.update({"dump": _dump, "title": _title, "reverse": _reverse})
    env.policies["truncate.leeway"] = 0
    return env


_ENV = _environment()


@functools.lru_cache(maxsize=_COMPILED)
def _compiled(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on its line {exc.lineno}: {exc.message}") from None
