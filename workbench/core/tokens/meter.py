"""An exact, incremental token count for a text being edited (the prompt editor's live meter).

Re-encoding a 100k-token prompt on every keystroke costs ~27 ms. ``TokenMeter`` keeps the text cut
into chunks of a few hundred characters, with each chunk's token count, and on an edit re-encodes only
the chunk(s) the edit touches. The count is exact: ``meter.count == len(encoding.encode_ordinary(meter.text))``
always, for ``o200k_base`` and ``cl100k_base``.

Why the chunk counts add up exactly
===================================

``encode_ordinary(T)`` runs the encoding's pre-tokenizer regex over ``T`` left to right (``find_iter``:
leftmost-first, each search starting where the previous match ended) and BPE-encodes every *piece*
separately; BPE merges never cross pieces. So if, at a position ``p``, the pieces of ``T`` are exactly the
pieces of ``T[:p]`` followed by the pieces of ``T[p:]``, then
``len(enc(T)) == len(enc(T[:p])) + len(enc(T[p:]))``. We cut only at such positions ("safe" ones), by
induction over the cuts (each rule below only looks at ``T[p-1]`` and ``T[p]``, which a neighbouring cut
does not change).

The two pattern strings (tiktoken's, from ``tiktoken_ext.openai_public``; abridged)::

    cl100k: '(?i:[sdmt]|ll|ve|re) | [^\\r\\n\\p{L}\\p{N}]?+\\p{L}++ | \\p{N}{1,3}+ | ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+
            | \\s++$ | \\s*[\\r\\n] | \\s+(?!\\S) | \\s
    o200k:  [^\\r\\n\\p{L}\\p{N}]?[Lu Lt Lm Lo M]*[Ll Lm Lo M]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
            | [^\\r\\n\\p{L}\\p{N}]?[Lu Lt Lm Lo M]+[Ll Lm Lo M]*(?i:'s|...)? | \\p{N}{1,3}
            | ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]* | \\s*[\\r\\n]+ | \\s+(?!\\S) | \\s+

Neither has a look-behind, ``^`` or ``\\b``, and ``$`` (cl100k) is the absolute end of the text, so a
match attempt at ``q >= p`` depends only on ``T[q:]``: the pieces from ``p`` on are those of ``T[p:]``
*provided* a piece of ``T`` ends at ``p``. For the pieces before ``p``: a match attempt at ``q < p`` runs
identically on ``T`` and on ``T[:p]`` unless it *reads position p*, where ``T`` has a character ``c`` and
``T[:p]`` has the end of the text. If every such read gets the same answer for ``c`` as for end-of-text,
the two scans make the same matches; the one covering ``p-1`` ends at ``p`` in ``T[:p]``, hence in ``T``,
and ``p`` is a piece boundary of ``T``.

An element reads ``p`` only once the match has consumed ``T[p-1]``; so only the elements that can follow
an element able to consume ``T[p-1]`` matter. The two elements that accept a space or other character
not in a word class — the optional ``[^\\r\\n\\p{L}\\p{N}]`` prefix and the `` ?`` of the punctuation branch
— are only ever first, at ``q`` itself. End-of-text is accepted by ``$``, by ``(?!\\S)`` and by a
quantifier stopping; ``$`` and ``(?!\\S)`` only follow ``\\s`` runs. Three rules, each safe for both:

**Rule W — ``T[p] == " "`` and ``T[p-1]`` is not whitespace.** ``T[p-1]`` was consumed by a letter,
mark or digit class, a contraction letter or ``'``, the prefix, ``[^\\s\\p{L}\\p{N}]`` or o200k's
``[\\r\\n/]`` (as ``/``); what can follow is a letter/mark/digit class, a contraction letter or ``'``,
``[^\\s\\p{L}\\p{N}]``, ``[\\r\\n]``/``[\\r\\n/]`` or the end of the branch. All reject a space, as they
reject end-of-text. No ``\\s`` run can reach ``p`` across the non-whitespace ``T[p-1]``.

**Rule L — ``T[p-1]`` is a letter or an ASCII digit and ``T[p]`` is an ASCII character other than a
letter, digit or ``'`` (newline, punctuation, space ...), or one of a fixed set of CJK/fullwidth
punctuation.** A letter or digit is consumed only by a letter/mark class, a contraction letter or
``\\p{N}``; what follows is another such class, the contraction's ``'`` or letters, or the end of the
branch. ``T[p]`` is none of L, M, N or ``'``, so all of them reject it as they reject end-of-text.

**Rule N — ``T[p-1] == "\\n"`` and ``T[p]`` is neither whitespace nor ``/``.** Letter, digit and
contraction branches cannot consume ``\\n``. The punctuation branch reads ``p`` only in its trailing
``[\\r\\n]*+`` (cl100k) / ``[\\r\\n/]*`` (o200k); ``c`` is not ``\\r``, ``\\n`` or ``/``, so it stops at ``p``
as at end-of-text, and nothing after it can fail. The whitespace branches read ``p`` only when ``T[q:p]``
is all whitespace; then ``\\s*[\\r\\n]`` (cl100k) / ``\\s*[\\r\\n]+`` (o200k) reads ``c`` (not whitespace,
so not ``\\r``/``\\n``), backtracks one and matches exactly ``T[q:p]``, ending on the newline at ``p-1``.
Here the answers *do* differ for cl100k's earlier ``\\s++$`` (it fails in ``T`` and matches in ``T[:p]``)
but it matches the same ``T[q:p]``; ``(?!\\S)`` and lone ``\\s`` are never reached. Same match either way.

The exclusions matter. ``"a\\n\\n \\nb"``: o200k makes ``"\\n\\n \\n"`` one token, and
cutting after the blank line (the ``(?<=\\n\\n)(?=[^\\n])`` rule measured in performance.md for cl100k)
gives 4 tokens instead of 3. ``"a.\\n\\n/b"``: o200k's ``[\\r\\n/]*`` takes the ``/`` into ``".\\n\\n/"``. A
run of two newlines is not needed: one newline followed by non-whitespace suffices.

Unicode tables: "whitespace" is the tokenizers' ``\\s`` (Unicode ``White_Space``); we test it with
``str.isspace``, a superset (it adds U+001C..U+001F), which can only forgo cuts. Rule L trusts that a
letter for Python (``str.isalpha``, Unicode 14 in 3.11) is ``\\p{L}`` for the tokenizer's newer tables
(the tests check all 131,756 of them against the newer tables of the ``regex`` module); its ``T[p]`` set
is fixed ASCII and CJK punctuation, whose categories do not depend on the Unicode version.

``encode_ordinary`` replaces lone surrogates (and joins surrogate pairs) before encoding; no cut falls
between two surrogates (one side of every cut is ASCII, a letter or CJK punctuation), and the replacement
is otherwise character-local, so the argument carries over.

Structure and cost of an edit
=============================

Chunks are cut greedily: at the first safe position at least ``chunk_chars`` after the previous cut, and
not when the tail would be shorter than ``chunk_chars // 2``. So chunks are ~``chunk_chars`` to
~``2 * chunk_chars`` long, except where a stretch has no safe position (a single pre-tokenizer piece,
e.g. a long run of CJK letters without punctuation): it stays one chunk, and an edit in it re-encodes it
(as a full re-encode would have to, plus the rest of the text). Chunks sit in blocks of up to
``2 * block_chunks`` chunks; a Fenwick tree over block lengths finds the block holding an offset.

``edit(start, end, s)`` takes the chunk holding ``start - 1`` and the chunk holding ``end`` (the cuts on
either side of an edit are the only ones whose two characters it can change: it may destroy or create a
cut there, or inside), splices ``s`` into their text, re-cuts and re-encodes that region, and splices the
new chunks in. Cost: O(log #blocks) to locate, O(block_chunks) C-level prefix sums inside a block, and
encoding the affected chunks plus ``s`` — O(log n + size of the affected chunks). When blocks split or
merge (amortised over ~``block_chunks`` edits) the Fenwick tree is rebuilt in O(#blocks).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate, chain

import tiktoken

__all__ = ["DEFAULT_BLOCK_CHUNKS", "DEFAULT_CHUNK_CHARS", "TokenMeter", "split_chunks"]

DEFAULT_CHUNK_CHARS = 256
DEFAULT_BLOCK_CHUNKS = 64

# Rule L's T[p]: ASCII other than letters, digits and "'", and CJK/fullwidth punctuation (P*/S*).
_AFTER_WORD = r"\x00-\x26\x28-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f" + re.escape(
    "、。，．：；！？「」『』（）《》〈〉【】〔〕…—·～＂＃＄％＆＊＋－／＜＝＞＠［＼］＾＿｀｛｜｝"
)
# Candidate cuts, as zero-width matches: rule N | rule W | rule L (T[p-1] in \w, a superset: checked
# below). Python's ``\s``/``\S`` in a str pattern is ``str.isspace``, a superset of White_Space.
_CUT = re.compile(rf"(?<=\n)(?=[^\s/])|(?<=\S)(?= )|(?<=\w)(?=[{_AFTER_WORD}])")


def _next_cut(text: str, pos: int) -> int:
    """The first safe cut at or after ``pos`` (``pos >= 1``), or -1."""
    search = _CUT.search
    while (m := search(text, pos)) is not None:
        p = m.start()
        before = text[p - 1]
        # rule N (before is a newline) and rule W (a space) are settled by the pattern; rule L needs a
        # letter or an ASCII digit before, where the pattern only checked \w (which also has "_", "²" ...)
        if before == "\n" or text[p] == " " or before.isalpha() or "0" <= before <= "9":
            return p
        pos = p + 1
    return -1


def split_chunks(text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into non-empty chunks at safe positions only (see the module docstring), so that for
    both encodings ``sum(len(enc.encode_ordinary(c)) for c in chunks) == len(enc.encode_ordinary(text))``.

    Chunks are at least ``chunk_chars`` long where the text allows, and the last one is at least
    ``chunk_chars // 2`` long. ``chunk_chars=1`` cuts at every safe position.
    """
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be at least 1")
    n = len(text)
    min_tail = chunk_chars // 2
    if n < chunk_chars + max(min_tail, 1):
        return [text] if text else []
    out: list[str] = []
    last = 0
    while True:
        p = _next_cut(text, last + chunk_chars)
        if p < 0 or n - p < min_tail:
            break
        out.append(text[last:p])
        last = p
    out.append(text[last:])
    return out


class _Block:
    """A run of consecutive chunks: their texts, lengths and token counts, and the totals."""

    __slots__ = ("counts", "length", "lens", "texts", "tokens")

    def __init__(self, texts: list[str], counts: list[int]) -> None:
        self.texts = texts
        self.counts = counts
        self.lens = [len(t) for t in texts]
        self.length = sum(self.lens)
        self.tokens = sum(counts)


class TokenMeter:
    """The exact token count of a text under ``encoding``, kept up to date edit by edit.

    Not thread-safe: one owner edits it. For a big text, build it (or call ``set_text``) in a worker
    thread — encoding releases the GIL — and hand the finished meter to the UI thread.
    """

    def __init__(
        self,
        encoding: tiktoken.Encoding,
        text: str = "",
        *,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
        block_chunks: int = DEFAULT_BLOCK_CHUNKS,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        if block_chunks < 2:
            raise ValueError("block_chunks must be at least 2")
        self._encoding = encoding
        self._chunk_chars = chunk_chars
        self._block_chunks = block_chunks
        self._block_max = 2 * block_chunks
        self._block_min = max(1, block_chunks // 4)
        self._blocks: list[_Block] = []
        self._fen: list[int] = [0]
        self._fen_top = 0
        self._length = 0
        self._count = 0
        self._text: str | None = ""
        self.set_text(text)

    @property
    def encoding(self) -> tiktoken.Encoding:
        return self._encoding

    @property
    def count(self) -> int:
        """The exact token count: always ``len(encoding.encode_ordinary(text))``."""
        return self._count

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(chain.from_iterable(b.texts for b in self._blocks))
        return self._text

    def __len__(self) -> int:
        """Length of the text in characters (code points)."""
        return self._length

    @property
    def chunk_count(self) -> int:
        return sum(len(b.texts) for b in self._blocks)

    def set_text(self, text: str) -> int:
        """Replace the whole text: cut and encode all of it. Returns the new count."""
        chunks = split_chunks(text, self._chunk_chars)
        encode = self._encoding.encode_ordinary
        counts = [len(encode(c)) for c in chunks]
        self._blocks = self._make_blocks(chunks, counts)
        self._rebuild_index()
        self._length = len(text)
        self._count = sum(counts)
        self._text = text
        return self._count

    def edit(self, start: int, end: int, replacement: str) -> int:
        """Replace ``text[start:end]`` with ``replacement``; re-encode only the affected chunk(s).

        Offsets are in code points (Python ``str`` indices). Returns the new count.
        """
        length = self._length
        if not 0 <= start <= end <= length:
            raise ValueError(f"edit range {start}:{end} outside the text (length {length})")
        if start == end and not replacement:
            return self._count
        if not self._blocks:
            return self.set_text(replacement)
        # The cut before the chunk holding start-1 and the cut after the chunk holding end keep both
        # their characters, so they stay safe; every cut in between is re-derived.
        b0, k0, s0 = self._locate(start - 1 if start > 0 else 0)
        b1, k1, s1 = self._locate(end if end < length else length - 1)
        head = self._blocks[b0].texts[k0][: start - s0]
        tail = self._blocks[b1].texts[k1][end - s1 :]
        chunks = split_chunks(head + replacement + tail, self._chunk_chars)
        encode = self._encoding.encode_ordinary
        counts = [len(encode(c)) for c in chunks]
        self._splice(b0, k0, b1, k1, chunks, counts)
        self._length = length + len(replacement) - (end - start)
        self._text = None
        return self._count

    def insert(self, pos: int, s: str) -> int:
        return self.edit(pos, pos, s)

    def delete(self, start: int, end: int) -> int:
        return self.edit(start, end, "")

    # -- structure ---------------------------------------------------------------------------------

    def _make_blocks(self, texts: list[str], counts: list[int]) -> list[_Block]:
        """Balanced blocks of ``block_chunks // 2 ..= block_chunks`` chunks (fewer only if there are fewer)."""
        n = len(texts)
        if not n:
            return []
        m = -(-n // self._block_chunks)
        base, extra = divmod(n, m)
        out: list[_Block] = []
        i = 0
        for j in range(m):
            k = i + base + (j < extra)
            out.append(_Block(texts[i:k], counts[i:k]))
            i = k
        return out

    def _rebuild_index(self) -> None:
        """Fenwick tree over block lengths (1-based), O(#blocks)."""
        fen = [0]
        fen.extend(b.length for b in self._blocks)
        n = len(fen) - 1
        for i in range(1, n + 1):
            j = i + (i & -i)
            if j <= n:
                fen[j] += fen[i]
        self._fen = fen
        self._fen_top = 1 << (n.bit_length() - 1) if n else 0

    def _locate(self, offset: int) -> tuple[int, int, int]:
        """(block index, chunk index in block, chunk start offset) of the chunk holding ``offset``."""
        fen = self._fen
        n = len(fen) - 1
        pos = 0
        rem = offset
        step = self._fen_top
        while step:
            nxt = pos + step
            if nxt <= n and fen[nxt] <= rem:
                pos = nxt
                rem -= fen[nxt]
            step >>= 1
        ends = list(accumulate(self._blocks[pos].lens))
        k = bisect_right(ends, rem)
        within = rem - (ends[k - 1] if k else 0)
        return pos, k, offset - within

    def _splice(self, b0: int, k0: int, b1: int, k1: int, chunks: list[str], counts: list[int]) -> None:
        """Replace chunks (b0, k0) ..= (b1, k1) with ``chunks``."""
        blocks = self._blocks
        if b0 == b1:
            blk = blocks[b0]
            lens = [len(c) for c in chunks]
            d_len = sum(lens) - sum(blk.lens[k0 : k1 + 1])
            d_tok = sum(counts) - sum(blk.counts[k0 : k1 + 1])
            blk.texts[k0 : k1 + 1] = chunks
            blk.counts[k0 : k1 + 1] = counts
            blk.lens[k0 : k1 + 1] = lens
            blk.length += d_len
            blk.tokens += d_tok
            self._count += d_tok
            n = len(blk.texts)
            if not n:
                del blocks[b0]
            elif n > self._block_max:
                blocks[b0 : b0 + 1] = self._make_blocks(blk.texts, blk.counts)
            elif n < self._block_min and len(blocks) > 1:
                lo = b0 - 1 if b0 == len(blocks) - 1 else b0
                a, b = blocks[lo], blocks[lo + 1]
                blocks[lo : lo + 2] = self._make_blocks(a.texts + b.texts, a.counts + b.counts)
            else:
                i = b0 + 1
                fen = self._fen
                while i < len(fen):
                    fen[i] += d_len
                    i += i & -i
                return
        else:
            first, last = blocks[b0], blocks[b1]
            removed = sum(first.counts[k0:]) + sum(b.tokens for b in blocks[b0 + 1 : b1]) + sum(last.counts[: k1 + 1])
            self._count += sum(counts) - removed
            texts = first.texts[:k0] + chunks + last.texts[k1 + 1 :]
            cnts = first.counts[:k0] + counts + last.counts[k1 + 1 :]
            blocks[b0 : b1 + 1] = self._make_blocks(texts, cnts)
        self._rebuild_index()
