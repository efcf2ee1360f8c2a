"""Reading YAML people write by hand: bounded (aliases cannot expand a small file into a huge document), with
the line numbers of its nodes for ``path:line: message`` errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

Loc = Sequence[int | str]
"""A path into loaded YAML data: mapping keys and sequence indexes, e.g. ``("tests", 2, "assert", 0)``."""


MAX_NODES = 1_000_000
"""The most nodes a document may hold once its aliases are expanded. A file with ten nested aliases of ten
(``billion laughs``) holds 10^9: whatever walks its data (checks, templates, copies) would take minutes and
gigabytes. Real suites and prompt files, even with thousands of tests, stay far below."""


class AliasBombError(yaml.MarkedYAMLError):
    """A document whose aliases expand past :data:`MAX_NODES`, or refer to themselves; marked at the alias."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader counting the nodes the document holds with its aliases expanded (each node's
    expanded size computed once), refusing it at the alias that takes it past :data:`MAX_NODES`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.expanded = 0
        self.sizes: dict[int, int] = {}
        self.question_is_text = False

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = self.anchors.get(event.anchor)
            if target is not None:
                if target.end_mark is None:  # still being composed: the alias is inside its own anchor
                    raise AliasBombError(None, None, f"YAML alias *{event.anchor} refers to the node it is in",
                                         event.start_mark)
                self.expanded += self.size(target)
                if self.expanded > MAX_NODES:
                    raise AliasBombError(None, None, f"YAML aliases expand the document past {MAX_NODES:,} nodes "
                                         f"(at *{event.anchor})", event.start_mark)
            return super().compose_node(parent, index)
        self.expanded += 1
        return super().compose_node(parent, index)

    def scan_plain(self) -> Any:
        """A plain scalar; inside ``{...}`` or ``[...]`` a ``?`` in it is text (``{q: Where is it?}``), as YAML
        1.2 and js-yaml (promptfoo's reader) read it, where PyYAML would end the scalar there and fail."""
        if not self.flow_level:
            return super().scan_plain()
        self.question_is_text = True
        try:
            return super().scan_plain()
        finally:
            self.question_is_text = False

    def peek(self, index: int = 0) -> str:
        char: str = super().peek(index)
        return "x" if char == "?" and self.question_is_text else char

    def size(self, node: yaml.Node) -> int:
        """How many nodes ``node`` stands for, its aliases expanded (memoised: linear in the distinct nodes)."""
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(self.size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(self.size(key) + self.size(value) for key, value in node.value)
        else:
            total = 1
        self.sizes[id(node)] = total
        return total


class JsYamlLoader(BoundedLoader):
    """:class:`BoundedLoader` reading plain scalars as js-yaml (promptfoo's reader, YAML 1.2) does where YAML 1.1
    reads them otherwise: ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` are text, not booleans, and ``1:30`` is
    text, not the base-60 number 90."""


_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
JsYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in BoundedLoader.yaml_implicit_resolvers.items()}
JsYamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
JsYamlLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
JsYamlLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def load(text: str, loader: type[BoundedLoader] = BoundedLoader) -> Any:
    """The data of a YAML document, bounded (:class:`BoundedLoader`); raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=loader)


def syntax_error(exc: yaml.YAMLError) -> tuple[int, str]:
    """The 1-based line and the message of a YAML parse error."""
    if isinstance(exc, AliasBombError):
        mark = exc.problem_mark
        return (mark.line + 1 if mark is not None else 1), str(exc.problem)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return line, f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
    return 1, f"YAML error: {exc}"


def compose(text: str, loader: type[BoundedLoader] = BoundedLoader) -> yaml.Node | None:
    """The node tree of ``text`` (raises :class:`yaml.YAMLError` when it is not YAML)."""
    return yaml.compose(text, Loader=loader)


def node_line(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the node at ``loc`` (the key's line for a mapping entry); the deepest found if partial."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1


def line_of(text: str, loc: Loc) -> int:
    """:func:`node_line` for a document given as text (line 1 when it does not parse)."""
    try:
        return node_line(compose(text), loc)
    except yaml.YAMLError:
        return 1
