"""Eval statistics, run diffs, CI gate reasons and the four report formats (md, json, junit, html)."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from workbench.core.evals.diff import beyond_noise, diff_runs, gate_failures
from workbench.core.evals.model import (
    CellKey,
    CellResult,
    CellSummary,
    Grading,
    Observation,
    RunInfo,
    RunReport,
)
from workbench.core.evals.report_formats import REPORT_FORMATS, failure_reason, render, report_filename
from workbench.core.evals.stats import summarise, wilson

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GPT, LLAMA = "openai/gpt-4o", "local/llama"
LONG_REASON = "json-schema: output does not match the schema\n" + "\n".join(f"  at $.items[{i}]: missing 'id'"
                                                                            for i in range(8))
DESCRIPTIONS = {"says hello": "greets the user by name"}


def run(test: str, passed: bool, *, prompt: str = "greet", target: str = GPT, repeat: int = 0,
        reason: str = "expected 'hello'", error: str | None = None, text: str | None = None,
        cost: float | None = 0.001, latency: float = 100.0, cached: bool = False) -> CellResult:
    """One run of one cell, graded by one ``contains`` assertion."""
    grading = Grading("contains", passed, float(passed), "found 'hello'" if passed else reason)
    observation = Observation(text=text if text is not None else f"output of {test}", latency_ms=latency,
                              cost_usd=cost, error=error)
    return CellResult(CellKey(test, prompt, target), repeat, observation, [grading], passed, float(passed), cached)


def runs(test: str, passes: int, n: int, **kwargs: Any) -> list[CellResult]:
    """``n`` repeats of a cell, the first ``passes`` of them passing."""
    return [run(test, i < passes, repeat=i, latency=100.0 * (i + 1), **kwargs) for i in range(n)]


def report(results: list[CellResult], *, run_id: str = "head", gate: float | None = None,
           base: RunReport | None = None) -> RunReport:
    info = RunInfo(id=run_id, suite="smoke", suite_path="evals/smoke.yaml", suite_digest="d1", started_at=START,
                   finished_at=START + 60, status="done", targets=(GPT, LLAMA), cost_usd=0.0123)
    made = RunReport(info, summarise(results, DESCRIPTIONS), gate=gate)
    if base is not None:
        made.diff = diff_runs(base, made)
    return made


def base_and_head() -> RunReport:
    """A run over two prompts and two targets, compared with the run before it, under an 80% gate."""
    base = report([
        run("says hello", True), run("says hello", True, target=LLAMA),
        run("a | b", True), run("a | b", False, target=LLAMA),
        run("refuses & declines", False, reason=LONG_REASON), run("refuses & declines", True, target=LLAMA),
        *runs("flaky", 3, 3), run("gone", True),
    ], run_id="base")
    return report([
        run("says hello", True, cached=True), run("says hello", True, target=LLAMA),
        run("says hello", True, prompt="greet-v2"),
        run("a | b", False, cost=0.0035, latency=1450.0), run("a | b", True, target=LLAMA),
        run("refuses & declines", False, reason=LONG_REASON, text="<script>alert(1)</script> see https://example.com"),
        run("refuses & declines", False, target=LLAMA, error="HTTP 503 from local/llama"),
        *runs("flaky", 2, 3),
    ], gate=0.8, base=base)


# --- stats ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("passes", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
    # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_intervals(passes: int, n: int, low: float, high: float) -> None:
    assert wilson(passes, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_without_runs_knows_nothing_and_narrows_with_z() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    wide, narrow = wilson(5, 10, z=2.576), wilson(5, 10, z=1.0)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]


def test_summarise_groups_cells_in_first_seen_order() -> None:
    results = [run("b", True, latency=300.0), run("a", False), run("b", False, repeat=1, latency=100.0, cost=None),
               run("b", True, repeat=2, latency=200.0), run("c", True, cost=None)]
    b, a, c = summarise(results, {"a": "the a test"})
    assert [s.key.test for s in (b, a, c)] == ["b", "a", "c"]
    assert (b.passes, b.runs, b.interval, b.flaky) == (2, 3, wilson(2, 3), True)
    assert b.score == pytest.approx(2 / 3)
    assert b.latency_ms == 200.0  # median of 100, 200, 300
    assert b.cost_usd == pytest.approx(0.002)  # the unknown cost is left out
    assert [r.repeat for r in b.results] == [0, 1, 2]
    assert (a.description, a.passes, a.runs, a.pass_rate) == ("the a test", 0, 1, 0.0)
    assert (c.description, c.cost_usd) == ("", None)


def test_summarise_median_latency_of_even_runs_and_unknown_latency() -> None:
    results = runs("x", 4, 4)
    results[3].observation.latency_ms = None
    results.append(run("y", True))
    results[-1].observation.latency_ms = None
    x, y = summarise(results, {})
    assert x.latency_ms == 200.0
    assert y.latency_ms is None


# --- diff ----------------------------------------------------------------------------------------------


def classify(before: tuple[int, int] | None, after: tuple[int, int] | None) -> str:
    """The change of one cell going from ``(passes, runs)`` before to after (None: not in that run)."""
    def one(counts: tuple[int, int] | None, run_id: str) -> RunReport:
        return report(runs("t", *counts) if counts else [run("other", True)], run_id=run_id)
    diff = diff_runs(one(before, "base"), one(after, "head"))
    return next(e.change for e in diff.entries if e.key.test == "t")


@pytest.mark.parametrize(("before", "after", "change"), [
    # single runs
    ((1, 1), (0, 1), "new-failure"), ((0, 1), (1, 1), "fixed"), ((1, 1), (1, 1), "unchanged"),
    ((0, 1), (0, 1), "unchanged"), (None, (1, 1), "added"), ((1, 1), None, "removed"),
    # repeats
    ((10, 10), (0, 10), "new-failure"), ((0, 10), (10, 10), "fixed"), ((3, 3), (0, 3), "new-failure"),
    ((10, 10), (2, 10), "regressed"), ((1, 10), (9, 10), "improved"),
    ((3, 3), (2, 3), "noise"), ((10, 10), (9, 10), "noise"), ((5, 10), (6, 10), "noise"),
    ((5, 10), (5, 10), "unchanged"), ((2, 4), (4, 8), "unchanged"), (None, (2, 3), "added"),
    # one side repeated
    ((1, 1), (0, 5), "new-failure"), ((1, 1), (4, 5), "noise"),
])
def test_diff_classifies_every_kind_of_change(before: tuple[int, int] | None, after: tuple[int, int] | None,
                                              change: str) -> None:
    assert classify(before, after) == change


def test_diff_keeps_the_head_order_then_the_removed_cells_and_links_both_sides() -> None:
    diff = base_and_head().diff
    assert diff is not None and (diff.base.id, diff.head.id) == ("base", "head")
    changes = [(e.key.test, e.key.prompt, e.key.target, e.change) for e in diff.entries]
    assert changes == [
        ("says hello", "greet", GPT, "unchanged"), ("says hello", "greet", LLAMA, "unchanged"),
        ("says hello", "greet-v2", GPT, "added"),
        ("a | b", "greet", GPT, "new-failure"), ("a | b", "greet", LLAMA, "fixed"),
        ("refuses & declines", "greet", GPT, "unchanged"), ("refuses & declines", "greet", LLAMA, "new-failure"),
        ("flaky", "greet", GPT, "noise"), ("gone", "greet", GPT, "removed"),
    ]
    removed = diff.of("removed")[0]
    assert removed.head is None and removed.base is not None and removed.cost_delta is None
    assert [e.key.test for e in diff.regressions] == ["a | b", "refuses & declines"]


def test_beyond_noise_only_when_the_intervals_part() -> None:
    diff = diff_runs(report(runs("t", 10, 10), run_id="base"), report(runs("t", 2, 10)))
    assert beyond_noise(diff.entries[0])
    assert not any(beyond_noise(e) for e in diff_runs(report(runs("t", 1, 1)), report(runs("t", 0, 1))).entries)


def test_gate_failures_name_the_rate_the_gate_and_every_regression() -> None:
    head = base_and_head()
    reasons = gate_failures(head, 0.8)
    assert reasons == [
        "pass rate 60% (6/10) is under the gate of 80%",
        "new-failure: test 'a | b' on prompt 'greet', target 'openai/gpt-4o': 100% (1/1) → 0% (0/1)",
        "new-failure: test 'refuses & declines' on prompt 'greet', target 'local/llama': 100% (1/1) → 0% (0/1)",
    ]
    assert gate_failures(head, 0.6) == reasons[1:]
    assert gate_failures(head, None) == reasons[1:]
    regressed = report(runs("t", 2, 10), base=report(runs("t", 10, 10), run_id="base"))
    assert gate_failures(regressed, None) == [
        "regressed: test 't' on prompt 'greet', target 'openai/gpt-4o': 100% (10/10) → 20% (2/10)"]
    assert gate_failures(report(runs("t", 2, 3), base=report(runs("t", 3, 3))), None) == []  # noise


# --- reports -------------------------------------------------------------------------------------------


def test_report_filenames_are_stable_and_safe() -> None:
    head = base_and_head()
    assert [report_filename(head, fmt) for fmt in REPORT_FORMATS] == [
        "eval-smoke-head.md", "eval-smoke-head.json", "eval-smoke-head.xml", "eval-smoke-head.html"]
    head.run.suite, head.run.id = "my suite/v2", "2026-01-01 00:00"
    assert report_filename(head, "md") == "eval-my-suite-v2-2026-01-01-00-00.md"
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        report_filename(head, "pdf")
    with pytest.raises(ValueError, match="md, json, junit, html"):
        render(head, "pdf")


def test_every_format_renders_the_same_report_to_the_same_text() -> None:
    for fmt in REPORT_FORMATS:
        assert render(base_and_head(), fmt) == render(base_and_head(), fmt)


def test_failure_reason_prefers_the_error_then_the_first_failing_assertion() -> None:
    cells = {(c.key.test, c.key.target): c for c in base_and_head().cells}
    assert failure_reason(cells[("refuses & declines", LLAMA)]) == "error: HTTP 503 from local/llama"
    assert failure_reason(cells[("a | b", GPT)]) == "contains: expected 'hello'"
    assert failure_reason(cells[("says hello", GPT)]) == ""


def test_markdown_is_a_pull_request_comment() -> None:
    md = render(base_and_head(), "md")
    lines = md.splitlines()
    assert lines[0] == ("## ❌ smoke: 60% passed (6/10) · gate 80% · cost $0.0123 · 10 calls, 1 cached")
    assert "Run head of evals/smoke.yaml · started 2026-01-01 00:00 UTC · done" in lines
    assert "- pass rate 60% (6/10) is under the gate of 80%" in lines
    greet = lines.index("### Prompt: greet")
    assert lines[greet + 2:greet + 9] == [
        "| Test | openai/gpt-4o | local/llama |",
        "| --- | :-: | :-: |",
        "| says hello | ✅ | ✅ |",
        "| a \\| b | ❌ | ✅ |",
        "| refuses & declines | ❌ | ❌ |",
        "| flaky | ⚠️ 66.7% (2/3) flaky | – |",
        "| Pass rate | 50% | 66.7% |",
    ]
    assert "| says hello | ✅ |" in lines[lines.index("### Prompt: greet-v2"):]
    assert "2 new-failure · 1 fixed · 1 noise · 1 added · 1 removed · 3 unchanged" in lines
    regressions = lines.index("#### Regressions (2)")
    assert lines[regressions + 2] == ("| Test | Prompt | Target | Change | Pass rate | Δ cost per run | Δ latency "
                                      "| Beyond noise |")
    assert lines[regressions + 4] == ("| a \\| b | greet | openai/gpt-4o | new-failure | 100% (1/1) → 0% (0/1) "
                                      "| +$0.0025 | +1.35 s | no |")
    fixed = lines.index("#### Fixed (1)")
    assert lines[fixed + 4] == "| a \\| b | greet | local/llama | fixed | 0% (0/1) → 100% (1/1) | $0 | 0 ms | no |"
    assert "- ❌ a \\| b · greet · openai/gpt-4o: contains: expected 'hello'" in lines
    assert "- ❌ refuses & declines · greet · local/llama: error: HTTP 503 from local/llama" in lines
    assert "- ⚠️ 66.7% (2/3) flaky flaky · greet · openai/gpt-4o: contains: expected 'hello'" in lines
    details = lines.index("<details><summary>❌ refuses &amp; declines · greet · openai/gpt-4o: "
                          "contains: json-schema: output does not match the schema…</summary>")
    assert lines[details + 2].startswith("<pre>contains: json-schema: output does not match the schema")
    assert "at $.items[7]: missing &#x27;id&#x27;</pre>\n\n</details>\n" in md


def test_markdown_of_a_passing_run_without_a_diff() -> None:
    md = render(report([*runs("t", 3, 3), run("u", True, target=LLAMA)], gate=0.9), "md")
    assert md.startswith("## ✅ smoke: 100% passed (4/4) · gate 90% · cost $0.0123 · 4 calls\n")
    assert "| t | ✅ 100% (3/3) | – |" in md
    assert "Regressions" not in md and "Failures" not in md
    assert "#### Regressions (0)\n\nNone." in render(report(runs("t", 1, 1), base=report(runs("t", 1, 1))), "md")


def test_markdown_lists_a_bounded_number_of_failures() -> None:
    md = render(report([run(f"t{i}", False) for i in range(60)]), "md")
    assert "### Failures (60)" in md
    assert "- ❌ t49 · greet" in md and "- ❌ t50 · greet" not in md
    assert "… and 10 more failing cells (see the HTML or JSON report)." in md


def test_json_is_a_stable_machine_readable_document() -> None:
    text = render(base_and_head(), "json")
    document = json.loads(text)
    assert list(document) == sorted(document)
    assert set(document) == {"format", "version", "run", "gate", "totals", "cells", "diff", "batches"}
    assert document["batches"] == []  # a run made without --batch
    assert document["run"]["id"] == "head" and document["run"]["targets"] == [GPT, LLAMA]
    assert document["totals"] == {"runs": 10, "passes": 6, "pass_rate": 0.6, "cost_usd": 0.0123, "unpriced_calls": 0,
                                  "passed": False, "gate_failures": gate_failures(base_and_head(), 0.8)}
    flaky = next(c for c in document["cells"] if c["key"]["test"] == "flaky")
    assert (flaky["runs"], flaky["passes"], flaky["flaky"]) == (3, 2, True)
    assert flaky["interval"] == pytest.approx(list(wilson(2, 3)))
    assert [r["repeat"] for r in flaky["results"]] == [0, 1, 2]
    assert flaky["results"][2]["gradings"] == [{"assertion": "contains", "passed": False, "score": 0.0,
                                                "reason": "expected 'hello'", "weight": 1.0, "metric": None,
                                                "components": []}]  # an assert-set's own gradings
    assert flaky["results"][0]["observation"]["text"] == "output of flaky"
    entries = document["diff"]["entries"]
    assert [e["change"] for e in entries].count("new-failure") == 2
    removed = entries[-1]
    assert (removed["change"], removed["head"], removed["base"]["key"]["test"]) == ("removed", None, "gone")
    assert "results" not in removed["base"]


def junit(made: RunReport) -> ET.Element:
    return ET.fromstring(render(made, "junit").encode())


def test_junit_has_a_suite_per_prompt_and_target_and_a_case_per_test() -> None:
    root = junit(base_and_head())
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("name", "tests", "failures", "skipped")} == {
        "name": "smoke", "tests": "8", "failures": "4", "skipped": "0"}
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        ("greet / openai/gpt-4o", "4", "3"), ("greet / local/llama", "3", "1"), ("greet-v2 / openai/gpt-4o", "1", "0")]
    gpt = suites[0]
    assert {p.get("name"): p.get("value") for p in gpt.iterfind("properties/property")} == {
        "prompt": "greet", "target": GPT, "cost_usd": "0.0085"}
    cases = {c.get("name"): c for c in gpt.iter("testcase")}
    assert list(cases) == ["says hello", "a | b", "refuses & declines", "flaky"]
    assert {c.get("classname") for c in cases.values()} == {"greet / openai/gpt-4o"}
    assert cases["flaky"].get("time") == "0.600"
    assert cases["says hello"].find("failure") is None
    failure = cases["a | b"].find("failure")
    assert failure is not None and failure.get("message") == "contains: expected 'hello'"
    flaky = cases["flaky"].find("failure")
    assert flaky is not None
    assert flaky.get("message") == "passed 66.7% of 3 runs (2/3); contains: expected 'hello'"
    assert flaky.text == "repeat 2: contains: expected 'hello'"
    assert {p.get("name"): p.get("value") for p in cases["flaky"].iterfind("properties/property")} == {
        "cost_usd": "0.003", "runs": "3", "passes": "2"}


def test_junit_escapes_markup_and_drops_characters_xml_cannot_hold() -> None:
    root = junit(report([run("<t> & \"q\"", False, reason="saw \x1b[31mred\x1b[0m & <b>")]))
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "<t> & \"q\""
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "contains: saw \ufffd[31mred\ufffd[0m & <b>"


def test_junit_skips_cells_the_run_never_reached() -> None:
    stopped = report([run("t", True)])
    stopped.run.status, stopped.run.stop_reason = "stopped", "budget"
    stopped.cells.append(CellSummary(CellKey("u", "greet", GPT), "", 0, 0, wilson(0, 0), 0.0, None, None))
    root = junit(stopped)
    assert (root.get("tests"), root.get("skipped"), root.get("failures")) == ("2", "1", "0")
    skipped = root.find("testsuite/testcase[@name='u']/skipped")
    assert skipped is not None and skipped.get("message") == "not run (run stopped: budget)"


class TagBalance(HTMLParser):
    """Checks every opened tag is closed in order, and collects attributes and text."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_well_formed_self_contained_page() -> None:
    page = render(base_and_head(), "html")
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert not {"script", "link", "img", "iframe"} & set(parser.tags)
    assert not [value for name, value in parser.attributes
                if name in ("src", "href") or "http://" in (value or "") or "https://" in (value or "")]
    assert "url(" not in page and "@import" not in page
    assert "prefers-color-scheme: dark" in page and "color-scheme: light dark" in page
    text = "".join(parser.text)
    for name in ("says hello", "a | b", "refuses & declines", "flaky", "openai/gpt-4o", "local/llama"):
        assert name in text
    assert "<script>alert(1)</script> see https://example.com" in text  # the output, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert parser.tags.count("details") == 8
    assert page.count('<td class="flaky">') == 1 and page.count('<td class="none">') == 1
    assert "greets the user by name" in text
    assert "error: HTTP 503 from local/llama" in text
    assert '<tr class="new-failure">' in page
    assert ('<tr class="removed"><td>gone</td><td>greet</td><td>openai/gpt-4o</td><td>removed</td><td>100% (1/1)</td>'
            "<td>–</td><td>–</td><td>–</td></tr>") in page
    assert "<tfoot><tr><th>Pass rate</th>\n<td>50%</td>\n<td>66.7%</td>\n</tr></tfoot>" in page
    assert "60% passed (6/10)" in text and "pass rate 60% (6/10) is under the gate of 80%" in text


def browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.mark.timeout(120)
@pytest.mark.skipif(browser() is None, reason="no chromium, chromium-browser or google-chrome installed")
def test_html_opens_in_a_headless_browser(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(base_and_head(), "html"), encoding="utf-8")
    dom = subprocess.run(
        [str(browser()), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=True,
    ).stdout
    for name in ("says hello", "a | b", "refuses & declines", "flaky"):
        assert html.escape(name, quote=False) in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>" not in dom
    assert dom.count("<details>") == 8
