"""Likely duplicates of a new issue: cosine similarity of word counts (title weighted).

Candidates come from the store (open issues sharing a significant title word, newest
first, a bounded number), so the cost stays flat however large the desk grows. The newest
open issues are the candidates of report after report, so the word counts of the last
few hundred compared are remembered rather than counted again each time.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable

# Words of two letters or more: a single letter says nothing.
_WORD = re.compile(r"[a-z0-9]{2,}")
_STOP_WORDS = frozenset(
    (
        "a an and are as at be but by can does for from has have in is it its not of on or "
        "so that the this to was when where which while with without"
    ).split()
)
# A word in the title says more about what an issue is than one deep in its description.
TITLE_WEIGHT = 3
MIN_SIMILARITY = 0.3


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` worth comparing (no stop words, no single letters)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]


def _word_counts(text: str) -> Counter[str]:
    # Counted first, then the stop words dropped: each distinct word is looked at once.
    counts = Counter(_WORD.findall(text.lower()))
    for word in counts.keys() & _STOP_WORDS:
        del counts[word]
    return counts


def profile(title: str, description: str) -> Counter[str]:
    """The weighted word counts an issue is compared by."""
    counts = _word_counts(description)
    for word, times in _word_counts(title).items():
        counts[word] += TITLE_WEIGHT * times
    return counts


def _norm(counts: Counter[str]) -> float:
    return math.sqrt(sum(c * c for c in counts.values()))


def cosine(a: Counter[str], b: Counter[str], *, norm_a: float | None = None) -> float:
    """Cosine similarity of two word-count vectors, 0..1 (``norm_a``: ``a``'s, if known)."""
    if not a or not b:
        return 0.0
    dot = sum(count * b[word] for word, count in a.items() if word in b)
    if not dot:
        return 0.0
    return dot / ((_norm(a) if norm_a is None else norm_a) * _norm(b))


# Read only, like every profile a comparison uses. Two reports' worth of candidates: of
# reports a few hundred characters long, with their texts as keys, a megabyte or so.
_remembered_profile = functools.lru_cache(maxsize=512)(profile)


def search_terms(title: str, limit: int = 4) -> list[str]:
    """The longest distinct title words: rare enough to find candidates with."""
    return sorted(set(words(title)), key=lambda w: (-len(w), w))[:limit]


def rank(
    new: Counter[str], candidates: Iterable[tuple[int, str, str]], *, limit: int = 5
) -> list[tuple[int, float]]:
    """``(id, similarity)`` of the most similar candidates above the threshold, best first."""
    norm = _norm(new)
    scored = [
        (issue_id, cosine(new, _remembered_profile(title, body), norm_a=norm))
        for issue_id, title, body in candidates
    ]
    kept = [(issue_id, round(score, 3)) for issue_id, score in scored if score >= MIN_SIMILARITY]
    return sorted(kept, key=lambda pair: (-pair[1], pair[0]))[:limit]
