"""Edits to a YAML file people wrote by hand that leave the rest of it as it was.

The text is loaded with ruamel.yaml's round-trip loader, changed there, and dumped with the file's own indentation;
then only the lines the change touched replace theirs in the original text. Comments, key order, quoting, flow
lists and maps, number formats (``0``, ``0x10``, ``1.0e-1``), blank lines and line endings stay as written, even
where ruamel.yaml would lay them out otherwise. A changed string keeps its quoting or block style; an added item
takes the style of the item before it. Pure text in, text out: the callers write the file (atomically).
"""

from __future__ import annotations

import difflib
import io
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from workbench.core.yaml_lines import line_of, load

# (mapping indent, sequence indent, dash offset): "key:\n  - item", "key:\n- item", then 4-space mappings
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 2, 0), (4, 6, 4))


def apply_changes(text: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """``text`` (a YAML mapping) with the changes that turn the plain data ``before`` into ``after``.

    ``before`` is what the file holds, as the caller reads it (normalised: defaults left out, numbers as
    floats...); an entry equal in both is not touched, however the file writes it."""

    def change(root: Any) -> Any:
        if not isinstance(root, CommentedMap):
            return _styled(dict(after), None, flow=False)
        _update_map(root, before, after, flow=False)
        return root

    return _edit(text, change)


def append_item(text: str, key: str | None, item: Mapping[str, Any]) -> tuple[str, int]:
    """``text`` with ``item`` appended to the list under the top-level ``key`` (``None``: the document is the
    list), which is created when missing or empty; and the 1-based line where the item starts."""
    index = 0

    def change(root: Any) -> Any:
        nonlocal index
        if key is not None and not isinstance(root, CommentedMap):
            root = CommentedMap()
        items = root if key is None else root.get(key)
        if items is None or items == "":
            items = CommentedSeq()
            if key is None:
                root = items
            else:
                root[key] = items
        if not isinstance(items, CommentedSeq):
            raise ValueError(f"{key or 'the document'} is not a list")
        index = len(items)
        items.append(_styled(dict(item), items[-1] if len(items) else None, _is_flow(items)))
        return root

    edited = _edit(text, change)
    return edited, line_of(edited, (index,) if key is None else (key, index))


# --- the round trip --------------------------------------------------------------------------------------------


def _edit(text: str, change: Callable[[Any], Any]) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    original = text.replace("\r\n", "\n")
    root = _rt(_LAYOUTS[0]).load(original)
    if root is None:  # empty, or comments only: they stay, the new content follows
        head = original if not original or original.endswith("\n") else original + "\n"
        return (head + _dump(_rt(_LAYOUTS[0]), change(None))).replace("\n", newline)
    layouts = _closest_layouts(original, root)
    root = change(root)
    rendered = [(base, _dump(rt, root)) for rt, base in layouts]
    meaning = load(rendered[0][1])
    for (base, edited), slide in itertools.product(rendered, (True, False)):
        merged = _merged(original, base, edited, slide=slide)
        if merged is not None and load(merged) == meaning:
            return merged.replace("\n", newline)
    return rendered[0][1].replace("\n", newline)


def _rt(layout: tuple[int, int, int]) -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 1_000_000
    rt.brace_single_entry_mapping_in_flow_sequence = True
    mapping, sequence, offset = layout
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    return rt


def _dump(rt: YAML, data: Any) -> str:
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _closest_layouts(original: str, root: Any) -> list[tuple[YAML, str]]:
    """Each dumper with its rendering of the unchanged document, the closest to the file first."""
    def distance(rendering: tuple[YAML, str]) -> float:
        lines = rendering[1].splitlines()
        return -difflib.SequenceMatcher(None, lines, original.splitlines(), autojunk=False).ratio()

    return sorted(((rt, _dump(rt, root)) for rt in map(_rt, _LAYOUTS)), key=distance)


def _merged(original: str, base: str, edited: str, *, slide: bool) -> str | None:
    """``original`` with the line changes that turn ``base`` (the unchanged document as dumped) into ``edited``;
    ``None`` when a change falls on lines the dump lays out differently from the file. With ``slide``, an
    insertion goes above the blank and comment lines before it (ruamel.yaml ties them to the previous item)."""
    o, b, e = (t.splitlines(keepends=True) for t in (original, base, edited))
    where: dict[int, int] = {}
    for block in difflib.SequenceMatcher(None, b, o, autojunk=False).get_matching_blocks():
        where.update((block.a + k, block.b + k) for k in range(block.size))
    out = list(o)
    for tag, i1, i2, j1, j2 in reversed(difflib.SequenceMatcher(None, b, e, autojunk=False).get_opcodes()):
        if tag == "equal":
            continue
        if tag == "insert":
            while slide and i1 > 0 and (not b[i1 - 1].strip() or b[i1 - 1].lstrip().startswith("#")):
                i1 -= 1
            at = _gap(where, i1, len(b), len(o))
            if at is None:
                return None
            out[at:at] = e[j1:j2]
            continue
        lines = [where.get(i) for i in range(i1, i2)]
        first = lines[0]
        if first is None or lines != list(range(first, first + len(lines))):
            return None
        out[first:first + len(lines)] = e[j1:j2]
    return "".join(out)


def _gap(where: Mapping[int, int], i: int, base_len: int, original_len: int) -> int | None:
    """Where in the original the gap before base line ``i`` lies, when both its neighbours are matched to it."""
    above = where.get(i - 1) if i > 0 else -1
    below = where.get(i) if i < base_len else original_len
    if above is None or below is None or (below != above + 1 and i not in (0, base_len)):
        return None
    return below if i < base_len else above + 1


# --- changing the loaded document ------------------------------------------------------------------------------


def _update_map(node: CommentedMap, before: Mapping[str, Any], after: Mapping[str, Any], flow: bool) -> None:
    flow = flow or _is_flow(node)
    for key in before:
        if key not in after and key in node:
            del node[key]
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        current = node.get(key)
        if isinstance(current, CommentedMap) and isinstance(old, Mapping) and isinstance(value, Mapping):
            _update_map(current, old, value, flow)
        elif isinstance(current, CommentedSeq) and isinstance(old, list) and isinstance(value, list) \
                and len(current) == len(old):
            _update_seq(current, old, value, flow)
        elif key in node:
            node[key] = _styled(value, current, flow)
        else:
            node.insert(_position(node, key, after), key, _styled(value, None, flow))


def _update_seq(node: CommentedSeq, before: list[Any], after: list[Any], flow: bool) -> None:
    flow = flow or _is_flow(node)
    for i, value in enumerate(after[:len(node)]):
        current = node[i]
        if before[i] == value:
            continue
        if isinstance(current, CommentedMap) and isinstance(before[i], Mapping) and isinstance(value, Mapping):
            _update_map(current, before[i], value, flow)
        else:
            node[i] = _styled(value, current, flow)
    del node[len(after):]
    for value in after[len(node):]:
        node.append(_styled(value, node[-1] if len(node) else None, flow))


def _position(node: CommentedMap, key: str, order: Iterable[str]) -> int:
    """Where a new ``key`` goes: after the keys of the node that come before it in ``order``."""
    keys = list(node)
    earlier = itertools.takewhile(lambda name: name != key, order)
    return max((keys.index(name) + 1 for name in earlier if name in node), default=0)


def _styled(value: Any, like: Any, flow: bool) -> Any:
    """``value`` as ruamel.yaml data written the way ``like`` (the value it replaces, or an item beside it) is:
    a list's or a map's flow style and key order, a string's quotes or block style (see :func:`_text`). ``flow``:
    it goes inside a ``[flow]`` or ``{flow}`` collection."""
    if isinstance(value, str):
        return _text(value, like, flow)
    if isinstance(value, Mapping | Sequence):
        flow = flow or _is_flow(like)
        data: CommentedMap | CommentedSeq
        if isinstance(value, Mapping):
            order = list(like) if isinstance(like, Mapping) else []
            keys = sorted(value, key=lambda k: order.index(k) if k in order else len(order))  # keys as in ``like``
            data = CommentedMap((key, _styled(value[key], like.get(key) if order else None, flow)) for key in keys)
        else:
            data = CommentedSeq()
            for item in value:
                data.append(_styled(item, data[-1] if data else _first(like), flow))
        if _is_flow(like):
            data.fa.set_flow_style()
        return data
    return value


def _text(value: str, like: Any, flow: bool) -> str:
    """A changed or new string: multi-line text in a block as ``like`` is (``|`` by default; ``"...\\n..."`` inside a
    flow collection or where ``like`` is double-quoted), else quoted as ``like`` is; otherwise plain when PyYAML
    (which reads these files) reads it back as this text, else quoted as PyYAML would quote it (``'yes'``,
    ``'0'``, a ``?`` in a flow map)."""
    if "\n" in value:
        if flow or isinstance(like, DoubleQuotedScalarString):  # no block inside [flow]: "...\n..." escapes
            return DoubleQuotedScalarString(value)
        return type(like)(value) if isinstance(like, FoldedScalarString) else LiteralScalarString(value)
    if isinstance(like, SingleQuotedScalarString | DoubleQuotedScalarString):
        return type(like)(value)
    dumped = yaml.safe_dump([value], default_flow_style=flow, allow_unicode=True, width=1_000_000)
    quote = dumped[1] if flow else dumped[2]
    return {"'": SingleQuotedScalarString, '"': DoubleQuotedScalarString}.get(quote, str)(value)


def _first(like: Any) -> Any:
    return like[0] if isinstance(like, CommentedSeq) and len(like) else None


def _is_flow(data: Any) -> bool:
    return isinstance(data, CommentedBase) and bool(data.fa.flow_style())
