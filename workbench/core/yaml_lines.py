"""Line numbers of YAML nodes, for ``path:line: message`` errors about files people edit by hand."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

Loc = Sequence[int | str]
"""A path into loaded YAML data: mapping keys and sequence indexes, e.g. ``("tests", 2, "assert", 0)``."""


def syntax_error(exc: yaml.YAMLError) -> tuple[int, str]:
    """The 1-based line and the message of a YAML parse error."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return line, f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
    return 1, f"YAML error: {exc}"


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (raises :class:`yaml.YAMLError` when it is not YAML)."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


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
