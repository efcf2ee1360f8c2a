"""The suite loader's ground: where each value came from (``path:line``), file references, and promptfoo's
vocabulary (provider ids, the CSV assertion shorthand) translated into ours."""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from workbench.core.errors import ConfigError
from workbench.core.evals.model import ASSERTION_TYPES, SuiteTarget
from workbench.core.prompts.model import PromptFileError
from workbench.core.request import ModelRef
from workbench.core.yaml_lines import JsYamlLoader, Loc, compose, load, node_line, syntax_error

FILE = "file://"
PROBLEMS_SHOWN = 20
"""A suite with more problems lists this many, then how many more there are."""
T = TypeVar("T")


class SuiteFileError(PromptFileError):
    """A malformed suite or test-data file: ``str(err)`` is ``path:line: message``."""

    default_hint = "fix the suite file"


class SuiteSyntaxError(SuiteFileError):
    """A file that is not YAML (or JSON): nothing after it can be read, so loading stops at once."""


@dataclass(frozen=True, slots=True)
class Src:
    """One file the suite reads: a YAML document (lines from its nodes) or one record of a CSV/JSONL file."""

    shown: str
    root: yaml.Node | None = None
    line0: int = 1

    def line(self, loc: Loc) -> int:
        return node_line(self.root, loc) if self.root is not None else self.line0

    def at(self, loc: Loc) -> str:
        return f"{self.shown}:{self.line(loc)}"

    def error(self, loc: Loc, problem: str, hint: str | None = None) -> SuiteFileError:
        return SuiteFileError(self.shown, self.line(loc), problem, hint)

    def located(self, loc: Loc, exc: ConfigError) -> SuiteFileError:
        """``exc`` (raised without a location, e.g. by the versions API) at ``loc``."""
        return self.error(loc, exc.message, exc.hint)


@dataclass(slots=True)
class Context:
    """What loading a suite needs everywhere: the workspace, the suite's folder, and the warnings so far."""

    workspace: Path
    folder: Path
    warnings: list[str] = field(default_factory=list)
    problems: list[SuiteFileError] = field(default_factory=list)
    """What is malformed, found so far (:meth:`collect`): reported together once the suite is read."""
    unwritten: Mapping[Path, str] = field(default_factory=dict)
    """Texts of files not written yet, by resolved path: read as if they were (a suite checked before writing)."""
    prompt_labels: tuple[str, ...] = ()
    """The suite's prompts, once read (what a provider's ``prompts`` filter names)."""
    prompt_configs: dict[str, tuple[Loc, dict[str, Any]]] = field(default_factory=dict)
    """promptfoo's prompt ``config`` by prompt label, with where it is written."""
    prompt_targets: dict[str, dict[str, SuiteTarget]] = field(default_factory=dict)
    """By prompt label, the targets (by label) with its ``config`` merged in (:attr:`SuitePrompt.on_targets`)."""
    judges: dict[str, SuiteTarget] = field(default_factory=dict)
    """Judges and assertion providers written with a ``config``, by the name they go by (:attr:`Suite.judges`)."""
    providers: Collection[str] | None = None
    """The providers a target may name (the built-ins and the configuration's); None: not checked at load."""

    def shown(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.workspace.resolve()))
        except ValueError:
            return str(path)

    def collect(self, parse: Callable[[], T]) -> T | None:
        """``parse()``; when it finds a problem, None, the problem kept for :meth:`check` (a syntax error stops
        at once)."""
        try:
            return parse()
        except SuiteSyntaxError:
            raise
        except SuiteFileError as exc:
            self.problems.append(exc)
            return None

    def check(self) -> None:
        """Raise the problems :meth:`collect` kept: one as it is; several as one error whose first line is the
        first problem, then one line for each other (``file:line: problem``), at most :data:`PROBLEMS_SHOWN`."""
        if not self.problems:
            return
        first, count = self.problems[0], len(self.problems)
        if count == 1:
            raise first
        lines = [first.problem, *(str(p) for p in self.problems[1:PROBLEMS_SHOWN])]
        if count > PROBLEMS_SHOWN:
            lines.append(f"… and {count - PROBLEMS_SHOWN} more")
        raise SuiteFileError(first.path, first.line, "\n  ".join(lines),
                             f"{count} problems in all, each at its file:line; fix them and load again")

    def unsupported(self, src: Src, loc: Loc, name: str) -> None:
        self.warnings.append(f"{src.at(loc)}: '{name}' is not supported (ignored)")

    def files(self, src: Src, loc: Loc, ref: str) -> list[Path]:
        """The files a ``file://`` reference names (a glob names every match), relative to the suite's folder."""
        pattern = ref.removeprefix(FILE)
        path = Path(pattern)
        full = path if path.is_absolute() else self.folder / path
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
            if not matches:
                raise src.error(loc, f"no file matches '{ref}'", f"paths are relative to {self.shown(self.folder)}")
            return matches
        if not full.is_file() and full.resolve() not in self.unwritten:
            raise src.error(loc, f"no file '{ref}'", f"paths are relative to {self.shown(self.folder)}")
        return [full]

    def read(self, src: Src, loc: Loc, path: Path) -> str:
        if path.resolve() in self.unwritten:
            return self.unwritten[path.resolve()]
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise src.error(loc, f"{self.shown(path)} is not UTF-8 text", "convert it to UTF-8") from None
        except OSError as exc:
            raise src.error(loc, f"cannot read {self.shown(path)}: {exc.strerror}") from None

    def parse_yaml(self, path: Path, text: str) -> tuple[Any, Src]:
        """A YAML (or JSON) document's data and its :class:`Src`; a syntax error raises with its line."""
        shown = self.shown(path)
        try:
            data = load(text, JsYamlLoader)
            root = compose(text, JsYamlLoader)
        except yaml.YAMLError as exc:
            line, problem = syntax_error(exc)
            raise SuiteSyntaxError(shown, line, problem) from None
        return data, Src(shown, root)


def expect(src: Src, loc: Loc, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise src.error(loc, f"expected {what}, not {json.dumps(value)}")
    if not isinstance(value, kind):
        raise src.error(loc, f"expected {what}, not {type(value).__name__} {json.dumps(value, default=str)[:60]}")
    return value


REFUSED_KEYS = {
    "env": ("'env' is not supported: it changes the keys and endpoints the calls use",
            "set the variables in the environment of `workbench eval`, or give a provider its own "
            "config (apiKeyEnvar, apiBaseUrl)"),
    "extensions": ("'extensions' is not supported: its hooks change the tests and what is sent",
                   "remove it, or write what the hook does into the suite"),
}
"""promptfoo's keys that would change what is sent or how it is graded and that we do not run: a load error,
never a warning (the run would differ from promptfoo's)."""


def check_keys(ctx: Context, src: Src, loc: Loc, data: Mapping[str, Any], ours: frozenset[str],
               ignored: frozenset[str], what: str) -> None:
    """Unknown keys are errors (a typo must not pass), and so are promptfoo's keys that would change the run
    (:data:`REFUSED_KEYS`); promptfoo's other keys that we do not support are warnings."""
    for key in data:
        if key in ours:
            continue
        if key in REFUSED_KEYS:
            raise src.error((*loc, key), *REFUSED_KEYS[key])
        if key in ignored:
            ctx.unsupported(src, (*loc, key), str(key))
            continue
        raise src.error((*loc, key), f"unknown key '{key}' in {what}", f"the keys are: {', '.join(sorted(ours))}")


# --- targets ---------------------------------------------------------------------------------------------------

_PROVIDER_KINDS = {
    "openai": "openai", "anthropic": "anthropic", "google": "gemini", "vertex": "gemini", "ollama": "ollama",
    "openrouter": "openrouter", "groq": "groq", "togetherai": "together", "deepseek": "deepseek",
    "mistral": "mistral",
}
"""promptfoo's provider prefixes that map onto our providers."""

_SUB_KINDS = {"chat": None, "messages": None, "responses": "openai-responses"}
"""promptfoo's API selectors after the prefix: the chat API is ours; ``openai:responses:`` is our Responses wire."""
_OTHER_APIS = frozenset({"completion", "embedding", "embeddings", "assistant", "realtime", "image", "moderation",
                         "transcription", "video", "agents", "codex-sdk"})


def target_ref(src: Src, loc: Loc, text: str) -> str:
    """Our ``provider/model`` for a target written as ours or as a promptfoo provider id."""
    head = text.split("/", 1)[0]
    if ":" not in head:
        try:
            return str(ModelRef.parse(text))
        except ConfigError as exc:
            raise src.located(loc, exc) from None
    kind, _, rest = text.partition(":")
    provider = _PROVIDER_KINDS.get(kind.lower())
    if provider is None:
        known = ", ".join(f"{k}:" for k in _PROVIDER_KINDS)
        raise src.error(loc, f"provider '{text}' is not supported ({kind}: providers cannot be run)",
                        f"use one of {known} or our provider/model form (e.g. openai/gpt-4o-mini)")
    api, sep, model = rest.partition(":")
    if sep and api in _SUB_KINDS:
        provider = _SUB_KINDS[api] or provider
        if provider == "openai-responses" and kind != "openai":
            raise src.error(loc, f"provider '{text}' is not supported", "only openai has the responses API")
    elif sep and api in _OTHER_APIS:
        raise src.error(loc, f"provider '{text}' is not supported (the {api} API)", f"use {kind}:chat:MODEL")
    else:
        model = rest
    if not model:
        raise src.error(loc, f"provider '{text}' names no model", f"write e.g. {kind}:chat:MODEL")
    return f"{provider}/{model}"


# --- assertions --------------------------------------------------------------------------------------------------

PROMPTFOO_ONLY_TYPES = frozenset({
    "context-recall", "context-relevance", "classifier", "moderation", "is-sql",
    "contains-sql", "is-valid-function-call", "bleu", "gleu",
    "meteor", "human", "guardrails", "pi", "conversation-relevance", "search-rubric",
    "trace-span-count", "trace-span-duration", "trace-error-spans",
})
"""Assertion types promptfoo has and we do not: named in the error instead of being taken for text."""


def unsupported_type(src: Src, loc: Loc, name: str) -> SuiteFileError:
    supported = ", ".join(sorted(ASSERTION_TYPES))
    return src.error(loc, f"assertion type '{name}' is not supported",
                     f"supported (each also as not-TYPE): {supported}")


_SHORTHAND = re.compile(r"^(not-)?([a-z][a-z-]*)(?:\((\d+(?:\.\d+)?)\))?(?::(.*))?$", re.DOTALL)
_LIST_VALUED = frozenset({"contains-any", "contains-all", "icontains-any", "icontains-all"})


def shorthand(src: Src, loc: Loc, text: str) -> dict[str, Any]:
    """One ``__expected`` cell of a CSV as an ``assert`` entry (promptfoo's shorthand: ``contains: x``,
    ``not-icontains: x``, ``levenshtein(5): x``, ``grade: rubric``, ``is-json``; any other text means equals)."""
    text = text.strip()
    if text.startswith(FILE):
        text = f"{'python' if text.endswith('.py') else 'javascript'}:{text}"
    for prefix, kind in (("grade:", "llm-rubric"), ("fn:", "javascript"), ("eval:", "javascript")):
        if text.startswith(prefix):
            text = f"{kind}:{text.removeprefix(prefix)}"
    match = _SHORTHAND.match(text)
    if match is None or (match[2] not in ASSERTION_TYPES and match[2] not in PROMPTFOO_ONLY_TYPES):
        return {"type": "equals", "value": text}
    negate, name, threshold, value = match.groups()
    if name not in ASSERTION_TYPES:
        raise unsupported_type(src, loc, name)
    entry: dict[str, Any] = {"type": f"{negate or ''}{name}"}
    if value is not None:
        value = value.strip()
        entry["value"] = [v.strip() for v in value.split(",")] if name in _LIST_VALUED else value
    if threshold is not None:
        entry["threshold"] = float(threshold)
    return entry
