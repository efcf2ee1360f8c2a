"""The eval domain shared by the suite loader, the assertions, the runner, the result store and the reports.

Plain slotted dataclasses: a 10,000-case run builds many of them, and they never cross a file boundary
as such (the suite loader validates the YAML with pydantic; the store and the reports serialise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from workbench.core.prompts.model import Prompt
from workbench.core.traces.redact import Redactor

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.core.endpoint_overrides import EndpointOverrides

ASSERTION_TYPES = frozenset({
    # text
    "equals", "contains", "icontains", "contains-any", "contains-all", "starts-with", "regex",
    # structure
    "is-json", "contains-json", "json-schema", "is-xml", "contains-xml", "is-html", "contains-html", "word-count",
    # measured figures (thresholds: ms, ms, USD, output tokens); the finish reason
    "latency", "ttft", "cost", "token-length", "finish-reason",
    # code, judges and services
    "python", "javascript", "llm-rubric", "webhook",
    # model-graded (the judge; answer-relevance also embeddings)
    "model-graded-closedqa", "factuality", "model-graded-factuality", "answer-relevance", "context-faithfulness",
    "g-eval",
    # similarity
    "levenshtein", "rouge-n", "bleu", "gleu", "similar",
    # promptfoo's heuristics and tool calls
    "icontains-any", "icontains-all", "is-refusal", "perplexity", "perplexity-score", "tool-call-f1",
    "is-valid-openai-tools-call", "is-valid-openai-function-call",
    # workbench's own: a tool call's name and arguments, the reasoning tokens
    "tool-call", "max-reasoning-tokens",
    # nested assertions
    "assert-set",
    # comparisons of a test's outputs across its prompts and targets, once its cells are done (never negated)
    "select-best", "max-score",
})
"""Every base assertion type; each also takes the ``not-`` prefix."""

MODEL_GRADED_TYPES = frozenset({
    "llm-rubric", "model-graded-closedqa", "factuality", "model-graded-factuality", "answer-relevance",
    "context-faithfulness", "g-eval", "select-best",
})
"""The types that call a judge (a test's ``options.provider`` is their judge)."""


@dataclass(frozen=True, slots=True)
class AssertionSpec:
    """One assertion of a test, as written (promptfoo's ``assert`` entries).

    ``type`` is the base type without the ``not-`` prefix (``negate`` holds it). ``value`` is the
    expected value, a pattern, a list, a schema, a rubric, a file reference, or a number, depending on
    the type. ``threshold`` is the bound for numeric types (latency, cost, similarity, judge score);
    ``weight`` weighs the assertion's score in the test's score (0 makes it informational).
    ``provider`` is the judge (or embedding) target of a model-graded type. ``source`` is ``file:line`` for messages.
    """

    type: str
    value: Any = None
    negate: bool = False
    threshold: float | None = None
    weight: float = 1.0
    metric: str | None = None
    provider: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    transform: str | None = None
    """promptfoo's assertion ``transform``: code (JavaScript, or ``file://x.py``) giving the output this
    assertion grades."""
    assertions: tuple[AssertionSpec, ...] = ()
    """The assertions of an ``assert-set``."""
    rubric_prompt: Any = None
    """promptfoo's ``rubricPrompt`` for a model-graded type: a text, a chat (list of messages), or for
    ``g-eval`` a mapping with ``steps`` and ``evaluate``."""

    @property
    def label(self) -> str:
        return f"not-{self.type}" if self.negate else self.type


@dataclass(slots=True)
class Observation:
    """What the assertions grade: one call's output and its measured figures."""

    text: str
    finish: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    prompt_text: str = ""
    """The rendered prompt as promptfoo gives it to providers, assertions and judges: a text prompt's text, a chat's
    messages as JSON (:func:`~workbench.core.evals.prompt_render.rendered_prompt`)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The test's ``metadata``, carried with each of its results into the store and every report."""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    """The reply's tool calls (``{id, name, arguments}``, the arguments the JSON text received); ``text`` is then
    promptfoo's output of such a reply (:mod:`workbench.core.evals.tool_replies`)."""
    reasoning_tokens: int | None = None
    """The reply's reasoning tokens; None when unknown."""
    cache_read_tokens: int | None = None
    """The input tokens read from the provider's prompt cache; None when the provider did not say."""

    def completion_details(self) -> dict[str, dict[str, int]]:
        """promptfoo's ``tokenUsage.completionDetails`` as far as the figures are known: the ``reasoning`` tokens and
        the input tokens read from the provider's cache (``cacheReadInputTokens``); none known, no such key."""
        details = {name: count for name, count in (("reasoning", self.reasoning_tokens),
                                                   ("cacheReadInputTokens", self.cache_read_tokens))
                   if count is not None}
        return {"completionDetails": details} if details else {}


@dataclass(frozen=True, slots=True)
class Grading:
    """One assertion's verdict: pass or fail, a score in [0, 1], and why."""

    assertion: str
    passed: bool
    score: float
    reason: str
    weight: float = 1.0
    metric: str | None = None
    components: tuple[Grading, ...] = ()
    """An ``assert-set``'s: the gradings of its assertions."""

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Grading:
        """A grading from its fields as stored (``dataclasses.asdict``; a set's gradings nested)."""
        nested = tuple(cls.from_fields(inner) for inner in fields.get("components") or ())
        return cls(**{**fields, "components": nested})


VARS_LABEL_LIMIT = 80
"""A test with no description is named by its variables, shortened to this many characters."""


_NO_KEYS = Redactor.build(("api_key",))
"""What a test's name never holds: an API key in its variables (redacted as the stores redact it; other rules
would let two tests differing only by, say, an e-mail address share a name)."""


def vars_label(variables: dict[str, str]) -> str:
    """``key=value, key=value`` on one line, an API key redacted, shortened with ``…``; ``(no variables)`` for
    none."""
    text = _NO_KEYS.stored(", ".join(f"{name}={' '.join(str(value).split())}" for name, value in variables.items()))
    if len(text) > VARS_LABEL_LIMIT:
        text = text[: VARS_LABEL_LIMIT - 1] + "…"
    return text or "(no variables)"


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test: variables and assertions (the suite's default test already merged in)."""

    __test__ = False  # a domain class, not a pytest test class

    vars: dict[str, str]
    assertions: tuple[AssertionSpec, ...] = ()
    description: str = ""
    threshold: float | None = None
    """With a threshold the test passes when its weighted score reaches it; without, when every
    assertion passes."""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The test's ``metadata`` as written (promptfoo's, for filtering and reports)."""
    transform: str | None = None
    """``options.transform``: code giving the output the test's assertions grade."""
    transform_vars: str | None = None
    """``options.transformVars``: code whose returned mapping is merged into the variables before rendering."""
    prefix: str = ""
    suffix: str = ""
    """``options.prefix`` / ``options.suffix``: text put before and after the prompt's text (promptfoo's)."""
    targets: tuple[str, ...] | None = None
    """promptfoo's test ``providers``: globs a target's label or ``provider/model`` must match; None: every target."""
    prompts: tuple[str, ...] | None = None
    """promptfoo's test ``prompts``: the labels (globs; ``name`` also matches ``name:...``) of the prompts it runs."""
    options: dict[str, Any] = field(default_factory=dict)
    """The test's ``options`` as written, the default test's merged under them (promptfoo's ``testCase.options``)."""

    def runs(self, prompt: str, target: SuiteTarget) -> bool:
        """Does this test run on the prompt labelled ``prompt`` and on ``target``?"""
        return (self.prompts is None or any(fnmatchcase(prompt, p) or prompt.startswith(f"{p}:")
                                            for p in self.prompts)) and (
            self.targets is None or any(fnmatchcase(target.label, p) or fnmatchcase(target.ref, p)
                                        for p in self.targets))

    @property
    def key(self) -> str:
        """Stable identity across runs: the description, else the variables as promptfoo names such a test."""
        return self.description or vars_label(self.vars)


@dataclass(frozen=True, slots=True)
class SuitePrompt:
    """A prompt under test: a workspace prompt file at a version, or an inline prompt."""

    label: str
    prompt: Prompt
    version: int | None = None
    """The prompt file's version number; None for an inline prompt."""
    nunjucks: bool = False
    """Rendered as promptfoo renders it (Nunjucks: an unset variable is empty): a prompt written in promptfoo's
    forms. False for our prompt files, whose every ``{{name}}`` needs a value."""
    json_template: str | None = None
    """A ``.json`` chat prompt holding template tags: its text, rendered before it is read as JSON (``prompt``
    then holds that text as one user message)."""
    function: str | None = None
    """A prompt function (``file://path.py:name``, or ``.js``): called for each test and target, what it returns is
    the prompt (``prompt`` holds a placeholder until then)."""
    chat: bool = False
    """Written as a chat (a JSON or YAML list of messages): as promptfoo renders it, its prompt is that list as
    JSON (:func:`~workbench.core.evals.prompt_render.rendered_prompt`), not one text."""
    folder: Path | None = None
    """Where a workspace prompt's attachment paths are relative to (its ``prompts/`` folder)."""
    on_targets: Mapping[str, SuiteTarget] = field(default_factory=dict)
    """promptfoo's prompt ``config``: by target label, the target this prompt runs on instead (that provider's
    config with the prompt's merged over it); a target not named here runs it as it is."""
    promptfoo_label: str | None = None
    """What promptfoo's outputs call a prompt the suite gave no label: an inline prompt its text, a prompt file's
    prompt ``path: text``; None: its ``label``."""


@dataclass(frozen=True, slots=True)
class LocalProvider:
    """How a non-model provider answers: ``kind`` is ``echo``, ``http`` or ``python``."""

    kind: str
    url: str = ""
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)
    transform_response: str | None = None
    code: str = ""
    """``python``: ``file://path.py[:function]`` (``call_api`` by default)."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """``python``: the provider's ``config``, handed to ``call_api`` as ``options["config"]``."""
    digest: str = ""
    """What the answers depend on besides the request (the settings; a Python file's text): cached answers of
    another version are never served."""


@dataclass(frozen=True, slots=True)
class RunLimits:
    """promptfoo's ``evaluateOptions`` that bound a run's time and pace (None or 0: no limit)."""

    timeout_ms: int | None = None
    """``timeoutMs``: a cell (its call and grading) running longer ends as an error, promptfoo's timeout error."""
    max_eval_time_ms: int | None = None
    """``maxEvalTimeMs``: the cells not done this long after the run started end as errors; the run still reports."""
    delay_ms: int = 0
    """``delay``: a wait after each call made (a cached answer waits for nothing); the run goes one cell at a time."""
    cache: bool = True
    """``cache``: False neither reads nor writes the response cache (``--no-cache``)."""


@dataclass(frozen=True, slots=True)
class SuiteTarget:
    """A target and the parameter overrides the suite gives it (promptfoo's provider ``config``)."""

    ref: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    transform: str | None = None
    """The provider's ``transform``: code applied to every output of this target first."""
    endpoint: EndpointOverrides | None = None
    """Its own base URL, key, headers and body fields (promptfoo's provider ``config``); None: its provider's."""
    prompts: tuple[str, ...] | None = None
    """promptfoo's provider ``prompts``: the labels of the only prompts run on it (``name`` also matches the
    labels ``name:...``); None runs every prompt."""
    local: LocalProvider | None = None
    """A provider that is not a model API (echo, http, a Python file): its cells are answered by it."""
    written_id: str | None = None
    """The id as the suite (or ``-t``) wrote it (promptfoo's ``openai:chat:gpt-4o-mini``), for promptfoo's outputs."""
    written_label: str | None = None
    """The ``label`` the suite gave it; None when it has none (``label`` is then its name here)."""
    delay_ms: int = 0
    """promptfoo's provider ``delay``: a wait after each call made to it (not after a cached answer)."""

    def runs(self, prompt: str) -> bool:
        """Is the prompt labelled ``prompt`` run on this target?"""
        return self.prompts is None or any(prompt == p or prompt.startswith(f"{p}:") for p in self.prompts)

    @property
    def cache_ref(self) -> str:
        """The target as the response cache knows it: its endpoint's fingerprint (never its key), or what a
        provider that is not a model answers by, too."""
        if self.local is not None:
            return f"{self.ref}#{self.local.digest}" if self.local.digest else self.ref
        return self.ref if self.endpoint is None else f"{self.ref}#{self.endpoint.fingerprint()}"


DEFAULT_GATE = 1.0
"""Without a gate, a run passes only when every cell does."""


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    path: str
    prompts: tuple[SuitePrompt, ...]
    targets: tuple[SuiteTarget, ...]
    tests: tuple[TestCase, ...]
    description: str = ""
    repeat: int = 1
    concurrency: int | None = None
    gate: float | None = None
    """Minimum pass rate (0..1) for the run to succeed (``--gate`` overrides)."""
    judge: str | None = None
    """Default judge target for ``llm-rubric``."""
    judges: dict[str, SuiteTarget] = field(default_factory=dict)
    """Judges (and assertion providers) written with a ``config``, by the name assertions and ``judge`` give them."""
    warnings: tuple[str, ...] = ()
    """What the file asked for that is not supported, by name (``file:line: ...``); printed, never silent."""
    digest: str = ""
    """Content hash of the suite as loaded (test data included), recorded with each run."""
    limits: RunLimits = field(default_factory=RunLimits)
    """promptfoo's ``evaluateOptions`` time limits, delay and cache switch."""
    output_paths: tuple[str, ...] = ()
    """promptfoo's ``outputPath``: the files written after the run, as ``-o`` writes them (``-o`` wins)."""
    derived_metrics: tuple[tuple[str, str], ...] = ()
    """promptfoo's ``derivedMetrics``: ``(name, formula)`` in order, reported in each column's named scores
    (:mod:`workbench.core.evals.derived_metrics`)."""
    min_cache_hit_ratio: float | None = None
    """``min-cache-hit-ratio``: each target's cache reads ÷ input tokens over the run's answered cells must reach it
    (:mod:`workbench.core.evals.cache_gate`)."""
    promptfoo: bool = False
    """Written as promptfoo's config (a ``promptfooconfig.*`` file, or one naming ``providers:``): promptfoo's
    ``PROMPTFOO_FAILED_TEST_EXIT_CODE`` and ``PROMPTFOO_PASS_RATE_THRESHOLD`` apply to its runs."""

    def gate_or_default(self, override: float | None = None) -> float:
        """The pass rate a run must reach: ``override`` (``--gate``), else the suite's, else every cell."""
        return override if override is not None else self.gate if self.gate is not None else DEFAULT_GATE

    @property
    def cell_count(self) -> int:
        return sum(t.runs(p.label) and test.runs(p.label, t) for test in self.tests for p in self.prompts
                   for t in self.targets)


@dataclass(frozen=True, slots=True)
class CellKey:
    """One cell of the grid: a test on one prompt and one target (repeats are runs of the same cell)."""

    test: str
    prompt: str
    target: str


@dataclass(slots=True)
class CellResult:
    """One run of one cell: the observation, every grading, the verdict."""

    key: CellKey
    repeat: int
    observation: Observation
    gradings: list[Grading]
    passed: bool
    score: float
    cached: bool = False
    trace_id: str | None = None


@dataclass(slots=True)
class CellSummary:
    """A cell over its repeats: pass rate with a Wilson interval, flakiness, figures."""

    key: CellKey
    description: str
    runs: int
    passes: int
    interval: tuple[float, float]
    score: float
    latency_ms: float | None
    cost_usd: float | None
    results: list[CellResult] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passes / self.runs if self.runs else 0.0

    @property
    def flaky(self) -> bool:
        return 0 < self.passes < self.runs


@dataclass(slots=True)
class RunInfo:
    id: str
    suite: str
    suite_path: str
    suite_digest: str
    started_at: float
    finished_at: float | None = None
    status: str = "running"
    """running, stopped (budget or interrupt: resumable), done."""
    stop_reason: str | None = None
    repeat: int = 1
    targets: tuple[str, ...] = ()
    cost_usd: float = 0.0
    gate: float | None = None
    """The pass rate the run had to reach (:meth:`Suite.gate_or_default`); None for a run stored before gates were."""
    gate_source: str | None = None
    """Where the gate came from: ``option`` (``--gate``), ``suite`` (its ``gate:``) or ``default`` (every cell)."""
    compared_with: str | None = None
    """The id of the run it was compared with (``--compare``), if any."""
    verdict: str | None = None
    """What the run concluded: passed, failed, stopped (budget), interrupted; None until it concluded."""
    failures: tuple[str, ...] | None = None
    """Why it failed as a gate, in the words it printed (empty when it passed; None without a verdict)."""
    exit_code: int | None = None
    """The exit code ``workbench eval`` gave (None for a run of the TUI)."""


@dataclass(frozen=True, slots=True)
class DiffEntry:
    key: CellKey
    change: str
    """new-failure, fixed, regressed, improved, noise, unchanged, added, removed."""
    base: CellSummary | None
    head: CellSummary | None

    @property
    def cost_delta(self) -> float | None:
        if self.base is None or self.head is None or self.base.cost_usd is None or self.head.cost_usd is None:
            return None
        return self.head.cost_usd / max(self.head.runs, 1) - self.base.cost_usd / max(self.base.runs, 1)

    @property
    def latency_delta_ms(self) -> float | None:
        if self.base is None or self.head is None or self.base.latency_ms is None or self.head.latency_ms is None:
            return None
        return self.head.latency_ms - self.base.latency_ms


@dataclass(slots=True)
class RunDiff:
    base: RunInfo
    head: RunInfo
    entries: list[DiffEntry]

    def of(self, change: str) -> list[DiffEntry]:
        return [e for e in self.entries if e.change == change]

    @property
    def regressions(self) -> list[DiffEntry]:
        return [e for e in self.entries if e.change in ("new-failure", "regressed")]


@dataclass(slots=True)
class StoredBatch:
    """A provider batch a run submitted (``eval --batch``): where it went, the cells it holds (custom id → cell
    identity), its last state and counts, and when its results were collected (None: not yet)."""

    run_id: str
    batch_id: str
    api: str
    target: str
    """The suite target's label."""
    submitted_at: float
    cells: dict[str, str]
    state: str = "submitted"
    succeeded: int = 0
    failed: int = 0
    collected_at: float | None = None

    @property
    def requests(self) -> int:
        return len(self.cells)


@dataclass(slots=True)
class RunReport:
    """Everything a report renders: the run, its cells, and the diff against a previous run if asked."""

    run: RunInfo
    cells: list[CellSummary]
    diff: RunDiff | None = None
    gate: float | None = None
    batches: list[StoredBatch] = field(default_factory=list)
    """The provider batches the run submitted (``eval --batch``)."""

    @property
    def runs(self) -> int:
        return sum(c.runs for c in self.cells)

    @property
    def passes(self) -> int:
        return sum(c.passes for c in self.cells)

    @property
    def pass_rate(self) -> float:
        return self.passes / self.runs if self.runs else 0.0

    @property
    def unpriced(self) -> int:
        """The answered calls whose cost is unknown (no price for their target)."""
        return sum(r.observation.cost_usd is None and r.observation.error is None
                   for c in self.cells for r in c.results)

    @property
    def cost_usd(self) -> float | None:
        """What the run cost; None when no answered call's cost is known (never a made-up $0)."""
        known = any(r.observation.cost_usd is not None for c in self.cells for r in c.results)
        return self.run.cost_usd if known or not self.unpriced else None
