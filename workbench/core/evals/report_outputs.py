"""``workbench eval -o FILE``: results in the format of the file's extension, as promptfoo's ``--output`` writes them.

``.json`` is promptfoo's output document (``version: 3``: ``results.results[]`` with the variables, prompt,
provider, response, verdict, grading, latency and cost of each result; ``results.prompts[]``; ``results.stats``),
``.yaml``/``.yml`` (and ``.txt``, as promptfoo writes it) the same document in YAML, ``.csv`` one row per result,
``.jsonl`` one result per line written as each cell finishes (:class:`ResultStream`: a run of any size never holds
them all), and ``.html``, ``.md`` and ``.xml`` (JUnit) our reports (:mod:`workbench.core.evals.report_formats`).
Every format carries each test's ``metadata``. Given the suite (:class:`SuiteNames`), providers and prompts are named
as promptfoo names them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

from workbench.core.errors import ConfigError, WorkbenchError
from workbench.core.evals.derived_metrics import derived
from workbench.core.evals.model import AssertionSpec, CellResult, Grading, RunInfo, RunReport, Suite, SuitePrompt
from workbench.core.evals.redaction import stored_grading, stored_observation
from workbench.core.evals.report_formats import render
from workbench.core.traces.redact import Redactor

OUTPUT_FORMATS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".txt": "yaml",
                  ".html": "html", ".htm": "html", ".md": "md", ".xml": "junit"}
"""Each extension ``-o`` knows, and the format it writes."""

def output_format(path: str) -> str:
    """The format ``-o path`` writes; a :class:`ConfigError` for an extension it does not know."""
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"-o {path}: unknown output format '{Path(path).suffix or '(no extension)'}'",
                          "name the file .json, .jsonl, .csv, .yaml, .txt, .html, .md or .xml")
    return fmt


@dataclass(frozen=True, slots=True)
class SuiteNames:
    """What promptfoo's outputs call a run's targets and prompts, as the suite wrote them."""

    providers: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    """By target label: the id as written (``openai:chat:gpt-4o-mini``) and the ``label`` given (None: none)."""
    prompts: Mapping[str, str] = field(default_factory=dict)
    """By prompt label: its template as written (a chat as its JSON list of messages)."""
    derived: tuple[tuple[str, str], ...] = ()
    """promptfoo's ``derivedMetrics`` (:attr:`Suite.derived_metrics`)."""
    prompt_labels: Mapping[str, str] = field(default_factory=dict)
    """By prompt label: what promptfoo calls a prompt given no label (:attr:`SuitePrompt.promptfoo_label`)."""
    assertions: Mapping[str, tuple[AssertionSpec, ...]] = field(default_factory=dict)
    """By test name: its assertions as written, for each grading's ``assertion`` in the outputs."""
    order: tuple[tuple[str, str], ...] = ()
    """The (prompt, target) columns in promptfoo's order: each provider's prompts in turn."""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    """By test name: the test's description (empty for a test without one, named by its variables)."""
    thresholds: Mapping[str, float] = field(default_factory=dict)
    """By test name: the test's ``threshold``, for those with one."""
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """By test name: its ``options`` as written (the default test's merged under them)."""

    def provider(self, target: str) -> dict[str, str]:
        """promptfoo's ``provider`` of a result: ``{id, label}``, the label empty when the suite gave none."""
        written, label = self.providers.get(target, (target, target))
        return {"id": written, "label": label or ""}

    def prompt_label(self, prompt: str) -> str:
        return self.prompt_labels.get(prompt, prompt)

    def in_order(self, columns: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """(prompt, target) ``columns`` in promptfoo's order (:attr:`order`: each provider's prompts in turn); one
        the suite does not name goes last."""
        rank = {column: number for number, column in enumerate(self.order)}
        return sorted(columns, key=lambda column: rank.get(column, len(rank)))


def suite_names(suite: Suite) -> SuiteNames:
    return SuiteNames({t.label: (t.written_id or t.ref, t.written_label if t.written_id else t.label)
                       for t in suite.targets},
                      {p.label: template_text(p) for p in suite.prompts}, suite.derived_metrics,
                      {p.label: p.promptfoo_label for p in suite.prompts if p.promptfoo_label is not None},
                      {t.key: t.assertions for t in suite.tests},
                      tuple((p.label, t.label) for t in suite.targets for p in suite.prompts),
                      {t.key: t.description for t in suite.tests},
                      {t.key: t.threshold for t in suite.tests if t.threshold is not None},
                      {t.key: t.options for t in suite.tests})


def template_text(prompt: SuitePrompt) -> str:
    """A prompt as written: its text, or its messages as a compact JSON chat list, as promptfoo's ``JSON.stringify``
    writes a chat prompt (a prompt function: its reference)."""
    if prompt.function is not None:
        return prompt.function
    if prompt.json_template is not None:
        return prompt.json_template
    messages = prompt.prompt.messages
    if not prompt.chat and prompt.prompt.system is None and len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    chat = [{"role": "system", "content": prompt.prompt.system}] if prompt.prompt.system is not None else []
    chat += [{"role": m.role, "content": m.content} for m in messages]
    return json.dumps(chat, ensure_ascii=False, separators=(",", ":"))


def render_output(report: RunReport, fmt: str, names: SuiteNames | None = None) -> str:
    """The whole report in ``fmt`` (any of :data:`OUTPUT_FORMATS`; ``jsonl`` whole here, where the CLI streams it)."""
    match fmt:
        case "jsonl":
            return "".join(json.dumps(result_record(result, names, report.run.id), ensure_ascii=False, default=str)
                           + "\n" for cell in report.cells for result in cell.results)
        case "json":
            return json.dumps(promptfoo_document(report, names), indent=2, ensure_ascii=False, default=str) + "\n"
        case "yaml":
            document = json.loads(json.dumps(promptfoo_document(report, names), default=str))
            return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        case "csv":
            return _csv(report, names or SuiteNames())
        case _:
            return render(report, fmt)


def write_output(path: Path, report: RunReport, fmt: str, names: SuiteNames | None = None) -> None:
    """Write the whole report to ``path`` in ``fmt``; a :class:`WorkbenchError` (the run is stored) when it cannot."""
    try:
        path.write_text(render_output(report, fmt, names), encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot write {path}: {exc.strerror}",
                             f"the run is stored: `workbench evals show {report.run.id}` shows it") from None


def named_score_weights(gradings: Sequence[Grading]) -> dict[str, float]:
    """promptfoo's ``namedScoreWeights`` of a result: by metric, the weight of the assertions naming it (weighed as
    :func:`named_scores` weighs them)."""
    weights: dict[str, float] = {}
    for grading in gradings:
        if grading.metric:
            weights[grading.metric] = weights.get(grading.metric, 0.0) + (grading.weight or 1.0)
    return weights


def named_scores(gradings: Sequence[Grading]) -> dict[str, float]:
    """promptfoo's ``namedScores``: by metric, the weighted mean of the scores of the assertions naming it (an
    assertion of weight 0, which only reports, counts with weight 1, so its metric is its score)."""
    totals: dict[str, list[float]] = {}
    for grading in gradings:
        if grading.metric:
            weight = grading.weight or 1.0
            total = totals.setdefault(grading.metric, [0.0, 0.0])
            total[0] += grading.score * weight
            total[1] += weight
    return {metric: score / weight for metric, (score, weight) in totals.items()}


def prompt_id(label: str) -> str:
    """promptfoo's id of a prompt (``promptId``, ``prompts[].id``): the SHA-256 of its label."""
    return hashlib.sha256(label.encode()).hexdigest()


def result_id(run_id: str, result: CellResult) -> str:
    """A result's ``id``: a UUID, the same for the same run, cell and repeat."""
    key = result.key
    return str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([run_id, key.test, key.prompt, key.target, result.repeat])))


def result_record(result: CellResult, names: SuiteNames | None = None, run_id: str = "") -> dict[str, Any]:
    """One result as promptfoo's output holds it (``results.results[]``); ``run_id`` makes its ``id``."""
    observation, key = result.observation, result.key
    tokens = _tokens(result)
    names = names or SuiteNames()
    failure = 0 if result.passed else 2 if observation.error else 1
    specs = names.assertions.get(key.test, ())
    components = _components(result.gradings, specs)
    reason = _reason(result, names)
    label = names.prompt_label(key.prompt)
    error = observation.error if observation.error or result.passed else reason
    return {
        "id": result_id(run_id, result),
        "testCase": {"description": key.test, "vars": observation.vars,
                     "assert": [_written_assertion(spec) for spec in specs],
                     "options": dict(names.options.get(key.test, {})), "metadata": observation.metadata},
        "prompt": {"raw": observation.prompt_text, "label": label},
        "promptId": prompt_id(label),
        "provider": names.provider(key.target),
        "response": {"output": observation.text, "tokenUsage": {**tokens, **observation.completion_details()},
                     "cost": observation.cost_usd,
                     "finishReason": observation.finish, "cached": result.cached},
        "vars": observation.vars,
        "success": result.passed,
        "score": result.score,
        "latencyMs": observation.latency_ms,
        "cost": observation.cost_usd,
        "gradingResult": {"pass": result.passed, "score": result.score, "reason": reason,
                          "componentResults": components},
        "namedScores": named_scores(result.gradings),
        **({"error": error} if error is not None else {}),
        "failureReason": failure,
        "metadata": observation.metadata,
        "repeat": result.repeat,
        "traceId": result.trace_id,
    }


def _reason(result: CellResult, names: SuiteNames) -> str:
    """promptfoo's ``gradingResult.reason``: for a test with a threshold whose call answered, the aggregate score
    against it (``Aggregate score 0.75 ≥ 0.7 threshold``); else the failed assertions' reasons, or ``All assertions
    passed``."""
    threshold = names.thresholds.get(result.key.test)
    if threshold is not None and result.observation.error is None:
        sign = "≥" if result.passed else "<"
        return f"Aggregate score {result.score:.2f} {sign} {_number(threshold)} threshold"
    reasons = [g.reason for g in result.gradings if not g.passed]
    return "; ".join(reasons) if reasons else "All assertions passed"


def _components(gradings: Sequence[Grading], specs: Sequence[AssertionSpec]) -> list[dict[str, Any]]:
    """promptfoo's ``gradingResult.componentResults``: each grading with its ``assertion`` as written; an
    ``assert-set``'s entry holds its own results (``componentResults``) and ``metadata.assertionSet``, and they
    follow it, each with its assertion."""
    components: list[dict[str, Any]] = []
    for grading, spec, assertion in _written_assertions(gradings, specs):
        if not grading.components:
            components.append({"pass": grading.passed, "score": grading.score, "reason": grading.reason,
                               "assertion": assertion})
            continue
        inner = _components(grading.components, spec.assertions if spec is not None else ())
        weights = named_score_weights(grading.components)
        components.append({"pass": grading.passed, "score": grading.score, "reason": grading.reason,
                           "namedScores": named_scores(grading.components),
                           **({"namedScoreWeights": {m: _number(w) for m, w in weights.items()}} if weights else {}),
                           "tokensUsed": {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0},
                           "componentResults": inner, "metadata": {"assertionSet": _set_metadata(assertion)}})
        components += inner
    return components


def _set_metadata(assertion: Mapping[str, Any]) -> dict[str, Any]:
    """promptfoo's ``metadata.assertionSet`` of an ``assert-set``'s result: its type, how many assertions it holds,
    and its metric, threshold and weight as written."""
    return {"type": assertion["type"], "assertionCount": len(assertion.get("assert", ())),
            **{name: assertion[name] for name in ("metric", "threshold", "weight") if name in assertion}}


def _written_assertions(gradings: Sequence[Grading], specs: Sequence[AssertionSpec]
                        ) -> list[tuple[Grading, AssertionSpec | None, dict[str, Any]]]:
    """Each grading, the assertion it grades and its ``assertion`` as promptfoo's outputs hold it: the assertion as
    written (its type, value, threshold, weight, metric, ...), paired in order with the test's assertions of its
    type (just the type for a grading none matches: a failed call's, a transform's)."""
    unpaired = list(specs)
    written: list[tuple[Grading, AssertionSpec | None, dict[str, Any]]] = []
    for grading in gradings:
        spec = next((s for s in unpaired if s.label == grading.assertion), None)
        if spec is None:
            written.append((grading, None, {"type": grading.assertion,
                                            **({"metric": grading.metric} if grading.metric else {})}))
            continue
        unpaired.remove(spec)
        written.append((grading, spec, _written_assertion(spec)))
    return written


def _written_assertion(spec: AssertionSpec) -> dict[str, Any]:
    assertion: dict[str, Any] = {"type": spec.label}
    if spec.value is not None:
        assertion["value"] = spec.value
    if spec.threshold is not None:
        assertion["threshold"] = _number(spec.threshold)
    if spec.weight != 1.0:
        assertion["weight"] = _number(spec.weight)
    for name, value in (("metric", spec.metric), ("provider", spec.provider), ("transform", spec.transform)):
        if value is not None:
            assertion[name] = value
    if spec.config:
        assertion["config"] = spec.config
    if spec.assertions:
        assertion["assert"] = [_written_assertion(inner) for inner in spec.assertions]
    return assertion


def _number(value: float) -> float | int:
    """A number as YAML wrote it: ``2``, not ``2.0``."""
    return int(value) if value.is_integer() else value


def promptfoo_document(report: RunReport, names: SuiteNames | None = None) -> dict[str, Any]:
    """The run as promptfoo's ``--output results.json`` (``version: 3``), as far as a stored run holds it."""
    names = names or SuiteNames()
    results = [result for cell in report.cells for result in cell.results]
    run = report.run
    records = [result_record(result, names, run.id) for result in results]
    prompts: dict[tuple[str, str], None] = {}
    tests: dict[str, None] = {}
    for result in results:
        prompts[(result.key.prompt, result.key.target)] = tests[result.key.test] = None
    prompt_order = names.in_order(prompts)
    test_order = list(tests)
    for result, record in zip(results, records, strict=True):
        record["promptIdx"] = prompt_order.index((result.key.prompt, result.key.target))
        record["testIdx"] = test_order.index(result.key.test)
    errors = sum(r.observation.error is not None for r in results)
    successes = sum(r.passed for r in results)
    return {
        "evalId": run.id,
        "results": {
            "version": 3,
            "timestamp": datetime.fromtimestamp(run.started_at, UTC).isoformat().replace("+00:00", "Z"),
            "prompts": [{**_prompt_record(names, prompt, target),
                         "metrics": _column_metrics(names, [r for r in results if (r.key.prompt, r.key.target)
                                                            == (prompt, target)])}
                        for prompt, target in prompt_order],
            "results": records,
            "stats": {"successes": successes, "failures": len(results) - successes - errors, "errors": errors,
                      "tokenUsage": _usage(results), **_durations(run)},
        },
        "config": {"description": run.suite, "path": run.suite_path},
        "shareableUrl": None,
        "metadata": {"verdict": run.verdict, "passRate": report.pass_rate, "gate": report.gate,
                     "costUsd": report.cost_usd},
    }


def _prompt_record(names: SuiteNames, prompt: str, target: str) -> dict[str, Any]:
    """An entry of ``results.prompts``: the template, its label, and the provider by its label, else its id."""
    provider = names.provider(target)
    label = names.prompt_label(prompt)
    return {"id": prompt_id(label), "raw": names.prompts.get(prompt, ""), "label": label,
            "provider": provider["label"] or provider["id"]}


def _durations(run: RunInfo) -> dict[str, int]:
    """promptfoo's ``durationMs`` and ``evaluationDurationMs``: the run's wall time, once it has finished."""
    if run.finished_at is None:
        return {}
    duration = max(0, round((run.finished_at - run.started_at) * 1000))
    return {"durationMs": duration, "evaluationDurationMs": duration}


def _column_metrics(names: SuiteNames, results: list[CellResult]) -> dict[str, Any]:
    """promptfoo's ``metrics`` of a column: its score and counts, the assertions that passed and failed, its total
    latency, tokens and cost, its named scores summed over its results (and the suite's ``derivedMetrics`` computed
    from them), how many results gave each, and the weight of the assertions naming each."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    weights: dict[str, float] = {}
    for result in results:
        for metric, score in named_scores(result.gradings).items():
            sums[metric] = sums.get(metric, 0.0) + score
            counts[metric] = counts.get(metric, 0) + 1
        for metric, weight in named_score_weights(result.gradings).items():
            weights[metric] = weights.get(metric, 0.0) + weight
    errors = sum(r.observation.error is not None for r in results)
    passes = sum(r.passed for r in results)
    components = [g for r in results for g in _flattened(r.gradings)]
    return {"score": sum(r.score for r in results), "testPassCount": passes,
            "testFailCount": len(results) - passes - errors, "testErrorCount": errors,
            "assertPassCount": sum(g.passed for g in components),
            "assertFailCount": sum(not g.passed for g in components),
            "totalLatencyMs": sum(r.observation.latency_ms or 0 for r in results), "tokenUsage": _usage(results),
            "namedScores": derived(names.derived, sums), "namedScoresCount": counts,
            "namedScoreWeights": {metric: _number(weight) for metric, weight in weights.items()},
            "cost": sum(r.observation.cost_usd or 0.0 for r in results)}


def _flattened(gradings: Sequence[Grading]) -> list[Grading]:
    """The gradings as promptfoo's ``componentResults`` lists them: an ``assert-set``'s own after it."""
    return [inner for grading in gradings for inner in (grading, *grading.components)]


def _tokens(result: CellResult) -> dict[str, int]:
    prompt, completion = result.observation.input_tokens or 0, result.observation.output_tokens or 0
    cached = prompt + completion if result.cached else 0
    return {"prompt": prompt, "completion": completion, "total": prompt + completion, "cached": cached}


_COMPLETION_DETAILS = ("reasoning", "acceptedPrediction", "rejectedPrediction", "cacheReadInputTokens",
                       "cacheCreationInputTokens")
"""promptfoo's ``completionDetails`` of a token total, each 0 unless known."""


def _usage(results: Iterable[CellResult]) -> dict[str, Any]:
    """promptfoo's token total of results: the targets' tokens and requests, their ``completionDetails``, and the
    graders' (``assertions``: ``{total, prompt, completion, cached, numRequests, completionDetails}``, written as 0:
    a judge call's tokens are in its trace)."""
    usage: dict[str, Any] = {"prompt": 0, "completion": 0, "total": 0, "cached": 0, "numRequests": 0}
    details = dict.fromkeys(_COMPLETION_DETAILS, 0)
    for result in results:
        for name, count in _tokens(result).items():
            usage[name] += count
        usage["numRequests"] += not result.cached
        for name, count in result.observation.completion_details().get("completionDetails", {}).items():
            details[name] += count
    graders = {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0,
               "completionDetails": dict.fromkeys(_COMPLETION_DETAILS, 0)}
    return {**usage, "completionDetails": details, "assertions": graders}


def _csv(report: RunReport, names: SuiteNames) -> str:
    """promptfoo's CSV: a row per test (and repeat): its description (a column only when a test has one), its
    variables, then for each column (each provider's prompts in turn) ``[provider] prompt`` holding the output and
    its Status, Score, Named Scores, Grader Reason and Comment; then our ``metadata:KEY`` columns."""
    results = [result for cell in report.cells for result in cell.results]
    columns = names.in_order(dict.fromkeys((r.key.prompt, r.key.target) for r in results))
    rows: dict[tuple[str, int], dict[tuple[str, str], CellResult]] = {}
    for result in results:
        rows.setdefault((result.key.test, result.repeat), {})[(result.key.prompt, result.key.target)] = result
    variables = list(dict.fromkeys(name for r in results for name in r.observation.vars))
    keys = list(dict.fromkeys(key for r in results for key in r.observation.metadata))
    described = any(names.descriptions.get(test, test) for test, _ in rows)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    header = ["Description"] * described + variables
    for prompt, target in columns:
        provider = names.provider(target)
        header += [f"[{provider['label'] or provider['id']}] {names.prompt_label(prompt)}", "Status", "Score",
                   "Named Scores", "Grader Reason", "Comment"]
    writer.writerow([*header, *(f"metadata:{key}" for key in keys)])
    for (test, _), cells in rows.items():
        first = next(iter(cells.values())).observation
        row = [names.descriptions.get(test, test)] * described + [_var_cell(first.vars.get(name)) for name in variables]
        for column in columns:
            done = cells.get(column)
            if done is None:
                row += [""] * 6
                continue
            o = done.observation
            scores = {metric: _number(score) for metric, score in named_scores(done.gradings).items()}
            row += [o.error if o.error else o.text, "PASS" if done.passed else "ERROR" if o.error else "FAIL",
                    f"{done.score:.2f}", json.dumps(scores, separators=(",", ":")) if scores else "",
                    o.error or _reason(done, names), ""]
        writer.writerow([*row, *(_metadata_cell(first.metadata.get(key)) for key in keys)])
    return out.getvalue()


def _var_cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _metadata_cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


class ResultStream:
    """``-o FILE.jsonl``: one result a line (:func:`result_record`), written and flushed as each cell finishes,
    its texts passed through the store's redactor as the store's are."""

    def __init__(self, path: Path, redactor: Redactor, names: SuiteNames | None = None, run_id: str = "") -> None:
        self.path, self.redactor, self.names, self.run_id = path, redactor, names, run_id
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def write(self, result: CellResult) -> None:
        kept = CellResult(result.key, result.repeat, stored_observation(result.observation, self.redactor),
                          [stored_grading(g, self.redactor) for g in result.gradings], result.passed, result.score,
                          result.cached, result.trace_id)
        record = result_record(kept, self.names, self.run_id)
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
