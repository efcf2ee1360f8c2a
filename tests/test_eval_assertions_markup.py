"""promptfoo's ``is-xml``, ``contains-xml``, ``is-html``, ``contains-html`` and ``word-count``: the cases of its
documentation and tests, each passing or failing with score 1 or 0, and negated the other way (score 1 - score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workbench.core.evals.assertions import grade
from workbench.core.evals.model import AssertionSpec, Grading, Observation

HERE = Path(".")
DOC = "<root><child>Content</child><sibling>More</sibling></root>"
REQUIRED = {"requiredElements": ["root.child", "root.sibling"]}


async def check(spec: AssertionSpec, text: str) -> Grading:
    return await grade(spec, Observation(text=text), base_dir=HERE)


# (type, value, output, passes, why it fails)
CASES: list[tuple[str, Any, str, bool, str]] = [
    ("is-xml", None, DOC, True, ""),
    ("is-xml", None, '<?xml version="1.0"?>\n<note><to>Tove</to></note>', True, ""),
    ("is-xml", REQUIRED, DOC, True, ""),
    ("is-xml", "root.child, root.sibling", DOC, True, ""),
    ("is-xml", ["root.child"], "<root><child>1</child><child>2</child></root>", True, ""),
    ("is-xml", {"requiredElements": ["root.child.1"]}, "<root><child>1</child><child>2</child></root>", True, ""),
    ("is-xml", {"requiredElements": ["root.item.@_id"]}, '<root><item id="7">x</item></root>', True, ""),
    ("is-xml", REQUIRED, "<root><child>Content</child></root>", False,
     "XML is missing required elements: root.sibling"),
    ("is-xml", None, "<root><child>Content</root>", False, "XML parsing failed: mismatched tag"),
    ("is-xml", None, "Here is the XML: <root/>", False, "XML parsing failed: syntax error"),
    ("is-xml", None, '<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', False,
     "DTD internal subsets are not supported by is-xml validation"),
    ("contains-xml", None, f"Here is the answer:\n{DOC}\nHope it helps.", True, ""),
    ("contains-xml", REQUIRED, f"Sure! {DOC} Done.", True, ""),
    ("contains-xml", {"requiredElements": ["a", "b"]}, "first <a>1</a> then <b>2</b>", True, ""),
    ("contains-xml", REQUIRED, "text <root><child>Content</child></root> text", False,
     "No valid XML content found matching the requirements"),
    ("contains-xml", None, "no markup at all", False, "No XML content found in the output"),
    ("is-html", None, "<div><p>Hello <b>world</b></p></div>", True, ""),
    ("is-html", None, "<!DOCTYPE html><html><head><title>T</title></head><body><p>x</p></body></html>", True, ""),
    ("is-html", None, "<my-widget>x</my-widget>", True, ""),
    ("is-html", None, "Hello <b>world</b>", False, "Output must be wrapped in HTML tags"),
    ("is-html", None, "<foo>bar</foo>", False, "Output does not contain recognized HTML elements"),
    ("is-html", None, '<?xml version="1.0"?><div/>', False, "Output appears to be XML, not HTML"),
    ("is-html", None, "   ", False, "Output is empty"),
    ("is-html", None, "<ul><li>one<li>two</ul>", True, ""),
    ("is-html", None, "<script>if (a < b) { go() }</script>", True, ""),
    ("is-html", None, "<div title='a>b'>x</div>", True, ""),
    ("is-html", None, "<div>a</div> and more", False, "Output must be wrapped in HTML tags"),
    ("is-html", None, "<br>text", False, "Output must be wrapped in HTML tags"),
    ("is-html", None, "<div", False, "Output does not contain recognized HTML elements"),
    ("contains-html", None, "Here you go: <div>content</div>", True, ""),
    ("contains-html", None, "Use &amp; and <!-- note --> here", True, ""),
    ("contains-html", None, "a < b and c > d", False, ""),
    ("contains-html", None, "<example>", False, ""),
    ("word-count", 5, "The quick brown fox jumps", True, ""),
    ("word-count", "5", "  The quick\n brown fox\tjumps  ", True, ""),
    ("word-count", 5, "The quick brown fox", False, "4 words"),
    ("word-count", {"min": 2, "max": 4}, "one two three four", True, ""),
    ("word-count", {"min": 2, "max": 4}, "one two three four five", False, "5 words"),
    ("word-count", {"min": 3}, "one two", False, "2 words"),
    ("word-count", {"max": 3}, "one two three", True, ""),
    ("word-count", 0, "", True, ""),
]


@pytest.mark.parametrize(("kind", "value", "output", "passes", "why"), CASES,
                         ids=[f"{c[0]}-{'pass' if c[3] else 'fail'}-{i}" for i, c in enumerate(CASES)])
async def test_each_type_passes_fails_and_negates_with_promptfoos_scores(kind: str, value: Any, output: str,
                                                                         passes: bool, why: str) -> None:
    grading = await check(AssertionSpec(kind, value), output)
    assert (grading.passed, grading.score) == (passes, float(passes)), grading.reason
    assert why in grading.reason
    negated = await check(AssertionSpec(kind, value, negate=True), output)
    assert (negated.passed, negated.score) == (not passes, float(not passes)), negated.reason
    assert negated.assertion == f"not-{kind}"


@pytest.mark.parametrize(("value", "why"), [
    (None, "word-count needs a value"),
    ({"min": 5, "max": 2}, "min (5) must be less than or equal to max (2)"),
    ({"minimum": 2}, "needs min and/or max"),
    ("many", "the value is a number or {min, max}"),
])
async def test_a_word_count_that_cannot_be_checked_fails_saying_why(value: Any, why: str) -> None:
    for negate in (False, True):
        grading = await check(AssertionSpec("word-count", value, negate=negate), "one two")
        assert (grading.passed, grading.score) == (False, 0.0)
        assert why in grading.reason


async def test_an_xml_value_of_another_shape_fails_saying_why() -> None:
    grading = await check(AssertionSpec("is-xml", {"elements": ["a"]}), "<a/>")
    assert (grading.passed, grading.score) == (False, 0.0)
    assert "requiredElements" in grading.reason


async def test_xml_with_an_external_entity_is_never_fetched() -> None:
    text = '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/never.dtd"><r>&ext;</r>'
    grading = await check(AssertionSpec("is-xml"), text)
    assert grading.passed, grading.reason


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["is-xml", "contains-xml", "is-html", "contains-html"])
async def test_a_hostile_output_is_graded_in_linear_time(kind: str) -> None:
    for text in ("<a " * 300_000, "<!--" * 250_000, "<a x='1'" * 120_000, "</a" * 300_000, "<div>" * 200_000):
        grading = await check(AssertionSpec(kind), text)
        assert grading.score in (0.0, 1.0), grading.reason
