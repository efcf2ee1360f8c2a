"""promptfoo's markup and length checks: ``is-xml``, ``contains-xml`` (``requiredElements``), ``is-html``,
``contains-html`` and ``word-count``, each scored 1 when it passes and 0 when it fails (negated too, as promptfoo
scores them).

XML is read with Python's expat (no DTD is loaded, no external entity is fetched): ``is-xml`` wants the whole
output to be a well-formed document, as promptfoo's strict parser does, and refuses a DTD internal subset as
promptfoo does; ``contains-xml`` looks for balanced elements in the text (promptfoo's scan: the maximal ones, and
runs of siblings) and passes on the first that parses and holds the required elements. A required element is a
dotted path through the parsed document as promptfoo's parser shapes it (``root.child``; a repeated element is a
list, indexed ``root.item.0``; an attribute is ``@_name``). ``is-html`` reads the text with HTML's tokenizer rules
(one pass, in place of jsdom) and applies promptfoo's rules; ``contains-html`` is promptfoo's pattern count. Every
check here takes time linear in the output, whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from workbench.core.evals.checks import Check, CheckFn, Context, Unusable, pass_fail, quote

# --- XML ----------------------------------------------------------------------------------------------------------


class _XmlProblem(Exception):
    """The text is not well-formed XML (or holds what is refused); the message says why."""


@dataclass(slots=True)
class _Node:
    name: str
    attributes: dict[str, str]
    children: list[_Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _shaped(node: _Node) -> Any:
    """``node`` as promptfoo's XML parser gives it: a leaf's text, or a mapping of ``@_attributes``, children (a
    list when repeated) and ``#text``."""
    text = "".join(node.text).strip()
    if not node.children and not node.attributes:
        return text
    shaped: dict[str, Any] = {f"@_{name}": value for name, value in node.attributes.items()}
    for child in node.children:
        value = _shaped(child)
        if child.name not in shaped:
            shaped[child.name] = value
        elif isinstance(shaped[child.name], list):
            shaped[child.name].append(value)
        else:
            shaped[child.name] = [shaped[child.name], value]
    if text:
        shaped["#text"] = text
    return shaped


def _parsed_xml(text: str) -> dict[str, Any]:
    """The well-formed XML document ``text``, shaped as promptfoo's parser shapes it; :class:`_XmlProblem` when it
    is not one."""
    parser = expat.ParserCreate()
    root = _Node("", {})
    stack = [root]
    refused: list[str] = []

    def doctype(_name: str, _system: str | None, _public: str | None, internal_subset: int) -> None:
        if internal_subset:
            refused.append("DTD internal subsets are not supported by is-xml validation")
            raise _XmlProblem(refused[0])

    def start(name: str, attributes: dict[str, str]) -> None:
        node = _Node(name, dict(attributes))
        stack[-1].children.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = lambda data: stack[-1].text.append(data)
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise _XmlProblem(f"XML parsing failed: {expat.errors.messages[exc.code]} "
                          f"(line {exc.lineno}, column {exc.offset + 1})") from None
    except _XmlProblem:
        raise _XmlProblem(refused[0]) from None
    shaped = _shaped(root)
    return shaped if isinstance(shaped, dict) else {}


def _has_path(value: Any, path: list[str]) -> bool:
    for key in path:
        if isinstance(value, list):
            if not key.isdigit() or str(int(key)) != key or int(key) >= len(value):
                return False
            value = value[int(key)]
        elif isinstance(value, dict):
            if key not in value:
                return False
            value = value[key]
        else:
            return False
    return True


def _missing(parsed: dict[str, Any], required: list[str]) -> list[str]:
    return [element for element in required if not _has_path(parsed, element.split("."))]


def _required_elements(ctx: Context) -> list[str]:
    """promptfoo's value of the XML types: none, a comma-separated text, a list, or ``{requiredElements: [...]}``."""
    value = ctx.value
    if isinstance(value, str):
        return [element.strip() for element in value.split(",")] if value else []
    if isinstance(value, list):
        return [str(element) for element in value]
    if isinstance(value, dict) and value:
        elements = value.get("requiredElements")
        if not isinstance(elements, list):
            raise Unusable(f"{ctx.spec.label}: the value is a text, a list, or {{requiredElements: [...]}}")
        return [str(element) for element in elements]
    if value is None or value == {}:
        return []
    raise Unusable(f"{ctx.spec.label}: the value is a text, a list, or {{requiredElements: [...]}}")


def _xml_verdict(text: str, required: list[str], *, fragment: bool) -> tuple[bool, bool, str]:
    """(valid, well-formed, why) of ``text`` as a document, or as a fragment (a run of elements)."""
    try:
        parsed = _parsed_xml(f"<fragment>{text}</fragment>" if fragment else text)
    except _XmlProblem as exc:
        return False, False, str(exc)
    if fragment:
        parsed = parsed["fragment"] if isinstance(parsed.get("fragment"), dict) else {}
    missing = _missing(parsed, required)
    if missing:
        return False, True, f"XML is missing required elements: {', '.join(missing)}"
    return True, True, "XML is valid and contains all required elements"


_NAME = r"[A-Za-z_:\u00c0-\U000effff][\w.:\u00b7\u0300-\u036f\u203f\u2040-]*"
_OPEN = re.compile(rf"<({_NAME})")
_CLOSE = re.compile(rf"</({_NAME})")


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    parent: int | None


def _tag_end(text: str, start: int) -> int:
    """The ``>`` closing the tag at ``start`` (quotes skipped); -1 when another ``<`` or the end comes first."""
    quote_char = ""
    for index in range(start + 1, len(text)):
        char = text[index]
        if quote_char:
            quote_char = "" if char == quote_char else quote_char
        elif char in "\"'":
            quote_char = char
        elif char == "<":
            return -1
        elif char == ">":
            return index
    return -1


def _declaration_end(text: str, start: int) -> int:
    for opening, closing in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")):
        if text.startswith(opening, start):
            found = text.find(closing, start + len(opening))
            return len(text) - 1 if found < 0 else found + len(closing) - 1
    depth, quote_char = 0, ""
    for index in range(start + 2, len(text)):
        char = text[index]
        if quote_char:
            quote_char = "" if char == quote_char else quote_char
        elif char in "\"'":
            quote_char = char
        elif char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif char == ">" and not depth:
            return index
    return len(text) - 1


def _xml_spans(text: str) -> list[_Span]:
    """promptfoo's candidates for ``contains-xml``: each balanced element (open and close tags matched by name on a
    stack that a mismatch empties), then kept as promptfoo orders them: runs of two or more siblings whose parent
    is not itself balanced, then the maximal elements by position."""
    stack: list[tuple[str, int]] = []
    spans: list[_Span] = []
    index = text.find("<")
    while 0 <= index < len(text):
        end = index
        if text.startswith(("<!", "<?"), index):
            end = _declaration_end(text, index)
        elif (closing := _CLOSE.match(text, index)) is not None:
            end = _tag_end(text, index)
            if end < 0:
                end = index
            elif stack and stack[-1][0] == closing[1]:
                start = stack.pop()[1]
                spans.append(_Span(start, end + 1, stack[-1][1] if stack else None))
            else:
                stack.clear()
        elif (opening := _OPEN.match(text, index)) is not None:
            end = _tag_end(text, index)
            if end < 0:
                end = index
            elif text[index:end].rstrip().endswith("/"):
                spans.append(_Span(index, end + 1, stack[-1][1] if stack else None))
            else:
                stack.append((opening[1], index))
        index = text.find("<", end + 1)
    starts = {span.start for span in spans}
    groups: dict[int | None, list[_Span]] = {}
    for span in spans:
        groups.setdefault(span.parent, []).append(span)
    ordered: list[_Span] = []
    for parent, siblings in groups.items():
        if len(siblings) > 1 and (parent is None or parent not in starts):
            siblings.sort(key=lambda s: (s.start, s.end))
            ordered.append(_Span(siblings[0].start, siblings[-1].end, parent))
    maximal = sorted((s for s in spans if s.parent is None or s.parent not in starts), key=lambda s: (s.start, -s.end))
    return list({(s.start, s.end): s for s in reversed([*ordered, *maximal])}.values())[::-1]


def _contains_xml(text: str, required: list[str]) -> tuple[bool, str]:
    spans = _xml_spans(text)
    if not spans:
        return False, "No XML content found in the output"
    containers: list[_Span] = []
    for span in spans:
        if any(c.start <= span.start and span.end <= c.end for c in containers):
            continue
        valid, well_formed, why = _xml_verdict(text[span.start:span.end], required, fragment=True)
        if valid:
            return True, why
        if well_formed:
            containers.append(span)
    return False, "No valid XML content found matching the requirements"


async def _is_xml(ctx: Context) -> Check:
    required = _required_elements(ctx)
    valid, _, why = _xml_verdict(ctx.obs.text, required, fragment=False)
    expected = "output that is XML" + (f" with {', '.join(required)}" if required else "")
    return pass_fail(valid, expected, why if not valid else quote(ctx.obs.text))


async def _contains_xml_check(ctx: Context) -> Check:
    required = _required_elements(ctx)
    valid, why = _contains_xml(ctx.obs.text, required)
    expected = "XML in the output" + (f" with {', '.join(required)}" if required else "")
    return pass_fail(valid, expected, why if not valid else quote(ctx.obs.text))


# --- HTML ---------------------------------------------------------------------------------------------------------

_HTML_PATTERNS = {
    "closing": re.compile(r"</[a-zA-Z][a-zA-Z0-9-]*\s*>"),
    "entity": re.compile(r"&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);"),
    "doctype": re.compile(r"<!DOCTYPE\s+html", re.IGNORECASE),
    "comment": re.compile(r"<!--[^-]*(?:-[^-]+)*-->"),
    "attribute": re.compile(r"\s[a-zA-Z-]+=\s*[\"'][^\"']*[\"']"),
    "common": re.compile(r"<(html|head|body|div|span|p|a|img|h[1-6]|ul|ol|li|table|tr|td|th|form|input|button|"
                         r"script|style|link|meta|br|hr)\b", re.IGNORECASE),
}
"""promptfoo's patterns but its opening and self-closing tags (:func:`_tags`, which finds those in linear time)."""
_TAG_NAME = re.compile(r"<[a-zA-Z][a-zA-Z0-9-]*")
_MAX_HTML = 10 * 1024 * 1024
"""promptfoo's size limit: a longer output is never HTML."""


def _tags(text: str) -> tuple[bool, bool]:
    """Does ``text`` hold an opening tag (promptfoo's ``<[a-zA-Z][a-zA-Z0-9-]*(?:\\s[^>]*)?>``), and a self-closing
    one (the same ending ``/>``)? As the patterns, in one pass: after a tag's name, a ``>`` at once, or a space and
    the next ``>`` (itself after ``/`` for a self-closing tag)."""
    opening = self_closing = False
    next_gt = -1
    for match in _TAG_NAME.finditer(text):
        end = match.end()
        if text.startswith("/>", end):
            opening = self_closing = True
        elif text.startswith(">", end):
            opening = True
        elif end < len(text) and text[end].isspace():
            if next_gt < end:
                next_gt = text.find(">", end)
                if next_gt < 0:
                    break
            opening = True
            self_closing = self_closing or (text[next_gt - 1] == "/" and next_gt - 1 > end)
        if opening and self_closing:
            break
    return opening, self_closing


def contains_html(text: str) -> bool:
    """promptfoo's indicators (paired tags 2, one kind of tag 1, self-closing 1, entity 1, doctype 2, comment 1,
    attribute 1, a common tag 2): HTML from 2 on."""
    if len(text) > _MAX_HTML:
        return False
    found = {name: pattern.search(text) is not None for name, pattern in _HTML_PATTERNS.items()}
    opening, self_closing = _tags(text)
    count = 2 if opening and found["closing"] else int(opening or found["closing"])
    count += self_closing + found["entity"] + 2 * found["doctype"] + found["comment"]
    count += found["attribute"] + 2 * found["common"]
    return count >= 2


HTML_ELEMENTS = frozenset({
    "html", "head", "title", "base", "link", "meta", "style", "body", "article", "section", "nav", "aside", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "footer", "address", "p", "hr", "pre", "blockquote", "ol", "ul", "li",
    "dl", "dt", "dd", "figure", "figcaption", "main", "div", "a", "em", "strong", "small", "s", "cite", "q", "dfn",
    "abbr", "ruby", "rt", "rp", "data", "time", "code", "var", "samp", "kbd", "sub", "sup", "i", "b", "u", "mark",
    "bdi", "bdo", "span", "br", "wbr", "img", "iframe", "embed", "object", "param", "picture", "source", "video",
    "audio", "track", "map", "area", "svg", "math", "script", "noscript", "canvas", "ins", "del", "table", "caption",
    "colgroup", "col", "tbody", "thead", "tfoot", "tr", "td", "th", "form", "label", "input", "button", "select",
    "datalist", "optgroup", "option", "textarea", "output", "progress", "meter", "fieldset", "legend", "details",
    "summary", "dialog", "menu", "slot", "template",
})
"""promptfoo's HTML5 elements (obsolete ones left out): an output is HTML when it holds one (or a custom
element, a name with a hyphen)."""
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})
_DOCUMENT = frozenset({"html", "head", "body"})


_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"})
"""Elements whose content is text up to their end tag (HTML's raw text and escapable raw text elements)."""
_START_TAG = re.compile(r"<([a-zA-Z][^\s/>]*)")
_END_TAG = re.compile(r"</([a-zA-Z][^\s/>]*)")


def _start_tag_end(text: str, start: int) -> int:
    """The ``>`` ending the start tag at ``start`` (an attribute value quoted after ``=`` skipped whole); -1 when
    the text ends first."""
    index, after_equals = start + 1, False
    while index < len(text):
        char = text[index]
        if char == ">":
            return index
        if char == "=":
            after_equals = True
        elif after_equals and char in "\"'":
            index = text.find(char, index + 1)
            if index < 0:
                return -1
            after_equals = False
        elif not char.isspace():
            after_equals = False
        index += 1
    return -1


def _html_scan(text: str) -> tuple[set[str], bool]:
    """The elements ``text`` writes (lower case), and whether it holds text outside every element (``html``,
    ``head``, ``body`` and void elements hold none): HTML's tokenizer in one pass, as far as ``is-html`` needs
    (comments, doctypes and bogus comments skipped; raw text elements hold their text up to their end tag; a tag
    the text ends inside is dropped; ``/>`` closes only void elements, as in HTML)."""
    elements: set[str] = set()
    open_elements: list[str] = []
    loose = False
    position = 0
    while (index := text.find("<", position)) >= 0:
        if not open_elements and text[position:index].strip():
            loose = True
        opening, closing = _START_TAG.match(text, index), _END_TAG.match(text, index)
        if text.startswith("<!--", index):
            close, width = text.find("-->", index + 4), 3
        elif closing is not None or text.startswith(("<!", "<?", "</"), index):
            close, width = text.find(">", index), 1
            if closing is not None and (name := closing[1].lower()) in open_elements:
                del open_elements[len(open_elements) - 1 - open_elements[::-1].index(name):]
        elif opening is not None:
            close, width = _start_tag_end(text, index), 1
            name = opening[1].lower()
            if close >= 0:
                elements.add(name)
                if name in _RAW_TEXT:  # its text runs to its end tag
                    end_tag = re.compile(rf"</{re.escape(name)}[\s/>]", re.IGNORECASE).search(text, close + 1)
                    if end_tag is None:
                        break
                    open_elements.append(name)
                    position = end_tag.start()
                    continue
                if name not in _VOID and name not in _DOCUMENT:
                    open_elements.append(name)
        else:  # a "<" that starts no tag is text
            if not open_elements:
                loose = True
            position = index + 1
            continue
        if close < 0:  # the text ends inside it
            break
        position = close + width
    else:
        if not open_elements and text[position:].strip():
            loose = True
    return elements, loose


def html_problem(text: str) -> str | None:
    """Why ``text`` is not HTML by promptfoo's ``is-html`` rules, or None when it is."""
    trimmed = text.strip()
    if not trimmed:
        return "Output is empty"
    if len(trimmed) > _MAX_HTML:
        return "Output exceeds maximum size limit"
    if re.match(r"<\?xml", trimmed, re.IGNORECASE):
        return "Output appears to be XML, not HTML"
    elements, loose = _html_scan(trimmed)
    lowered = trimmed.lower()
    if "<body" not in lowered and loose:
        return "Output must be wrapped in HTML tags"
    written = {tag for tag in elements if tag not in _DOCUMENT or f"<{tag}" in lowered}
    if not any(tag in HTML_ELEMENTS or "-" in tag for tag in written):
        return "Output does not contain recognized HTML elements"
    return None


async def _is_html(ctx: Context) -> Check:
    problem = html_problem(ctx.obs.text)
    return pass_fail(problem is None, "output that is HTML", problem or quote(ctx.obs.text))


async def _contains_html(ctx: Context) -> Check:
    return pass_fail(contains_html(ctx.obs.text), "HTML in the output", quote(ctx.obs.text))


# --- word count ---------------------------------------------------------------------------------------------------


def _bound(ctx: Context, value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unusable(f"word-count: {name} must be a number, not {value!r}")
    return float(value)


def _exact(ctx: Context, value: Any) -> float:
    """promptfoo's exact count: a number, or a text that is one (JavaScript's ``Number``: an empty text is 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            pass
    raise Unusable("word-count: the value is a number or {min, max}")


async def _word_count(ctx: Context) -> Check:
    """promptfoo's ``word-count``: words are the whitespace-separated runs; the value is the exact count, or a
    mapping with ``min`` and/or ``max`` (bounds included)."""
    value = ctx.value
    if value is None:
        raise Unusable("word-count needs a value: a number, or {min, max}")
    words = len(ctx.obs.text.split())
    found = f"{words} word{'s' if words != 1 else ''}"
    if isinstance(value, dict):
        low, high = _bound(ctx, value.get("min"), "min"), _bound(ctx, value.get("max"), "max")
        if low is None and high is None:
            raise Unusable("word-count: the value's mapping needs min and/or max")
        if low is not None and high is not None and low > high:
            raise Unusable(f"word-count: min ({low:g}) must be less than or equal to max ({high:g})")
        passed = (low is None or words >= low) and (high is None or words <= high)
        bounds = [f">= {low:g}"] if low is not None else []
        bounds += [f"<= {high:g}"] if high is not None else []
        return pass_fail(passed, f"a word count {' and '.join(bounds)}", found)
    expected = _exact(ctx, value)
    return pass_fail(words == expected, f"exactly {expected:g} words", found)


CHECKS: dict[str, CheckFn] = {
    "is-xml": _is_xml,
    "contains-xml": _contains_xml_check,
    "is-html": _is_html,
    "contains-html": _contains_html,
    "word-count": _word_count,
}
