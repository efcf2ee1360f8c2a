"""Text similarity for the ``levenshtein``, ``rouge-n``, ``bleu`` and ``gleu`` assertions, in pure Python."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]")


def levenshtein(a: str, b: str, bound: int | None = None) -> int:
    """Edit distance between ``a`` and ``b`` (insertions, deletions, substitutions).

    With ``bound`` only the diagonal band of that width is computed (O(len * bound) instead of
    O(len * len)) and any distance above the bound comes back as ``bound + 1``.
    """
    a, b = _strip_common(a, b)
    if len(a) < len(b):
        a, b = b, a
    if bound is not None and len(a) - len(b) > bound:
        return bound + 1
    if not b:
        return len(a)
    width = len(a) if bound is None else bound
    far = len(a) + len(b)
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        low, high = max(1, i - width), min(len(b), i + width)
        current = [far] * (len(b) + 1)
        current[0] = i if low == 1 else far
        for j in range(low, high + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != b[j - 1]))
        if bound is not None and min(current[low - 1 : high + 1]) > bound:
            return bound + 1
        previous = current
    distance = previous[len(b)]
    return distance if bound is None else min(distance, bound + 1)


def _strip_common(a: str, b: str) -> tuple[str, str]:
    """Drop the common prefix and suffix, which never change the distance."""
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


def tokens(text: str) -> list[str]:
    """Words and punctuation marks, case kept (as promptfoo's ROUGE tokenizer does)."""
    return _TOKEN.findall(text)


def rouge_n(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N recall: the share of the reference's n-grams found in the candidate (counts clipped).

    A reference too short to have an n-gram scores 1.0 against a candidate without one either, else 0.0.
    """
    wanted = _ngrams(tokens(reference), n)
    found = _ngrams(tokens(candidate), n)
    total = sum(wanted.values())
    if total == 0:
        return 0.0 if found else 1.0
    return sum((wanted & found).values()) / total


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


_SPACE = re.compile(r"\s+")
_BLEU_FLOOR = 1e-7
"""promptfoo's smoothing: an n-gram precision of 0 counts as this."""


def bleu(candidate: str, references: Sequence[str]) -> float:
    """promptfoo's sentence BLEU: lower-cased words split at whitespace, clipped 1- to 4-gram precisions (the best
    reference for each n) weighted equally in a geometric mean (a zero precision smoothed to 1e-7), times the
    brevity penalty against the reference closest in length (the first on a tie); 0 for an empty candidate."""
    if not candidate.strip():
        return 0.0
    words = _words(candidate)
    refs = [_words(reference) for reference in references]
    closest = len(refs[0])
    for ref in refs[1:]:
        if abs(len(ref) - len(words)) < abs(closest - len(words)):
            closest = len(ref)
    log_sum = 0.0
    for n in range(1, 5):
        grams = _joined_ngrams(words, n)
        total = sum(grams.values())
        best = max(sum((grams & _joined_ngrams(ref, n)).values()) for ref in refs)
        precision = best / total if total else 0.0
        log_sum += 0.25 * math.log(precision or _BLEU_FLOOR)
    penalty = 1.0 if len(words) > closest else math.exp(1 - len(words) / closest)
    return penalty * math.exp(log_sum)


def _words(text: str) -> list[str]:
    """JavaScript's ``text.toLowerCase().trim().split(/\\s+/)``: an empty text is one empty word."""
    return _SPACE.split(text.lower().strip())


def gleu(candidate: str, references: Sequence[str]) -> float:
    """promptfoo's GLEU: words as for :func:`bleu` less their trailing dots; against each reference the smaller of
    the precision and the recall of the 1- to 4-grams counted together (1 for the same words), the best
    reference's; 0 for an empty candidate."""
    if not candidate.strip():
        return 0.0
    words = [word.rstrip(".") for word in _words(candidate)]
    scores = []
    for reference in references:
        ref = [word.rstrip(".") for word in _words(reference)]
        if ref == words:
            scores.append(1.0)
            continue
        matches = ours = theirs = 0
        for n in range(1, 5):
            grams, wanted = _joined_ngrams(words, n), _joined_ngrams(ref, n)
            matches += sum((grams & wanted).values())
            ours, theirs = ours + sum(grams.values()), theirs + sum(wanted.values())
        scores.append(0.0 if not ours or not theirs else min(matches / ours, matches / theirs))
    return max(scores)


def _joined_ngrams(words: list[str], n: int) -> Counter[str]:
    return Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
