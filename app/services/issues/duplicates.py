"""Likely duplicates of a new issue: cosine similarity of word counts (title weighted).

Candidates come from the store (open issues sharing a significant title word, newest
first, a bounded number), so the cost stays flat however large the desk grows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
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
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP_WORDS]


def profile(title: str, description: str) -> Counter[str]:
    """The weighted word counts an issue is compared by."""
    counts = Counter(words(description))
    for word in words(title):
        counts[word] += TITLE_WEIGHT
    return counts


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """Cosine similarity of two word-count vectors, 0..1."""
    if not a or not b:
        return 0.0
    dot = sum(count * b[word] for word, count in a.items() if word in b)
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm


def search_terms(title: str, limit: int = 4) -> list[str]:
    """The longest distinct title words: rare enough to find candidates with."""
    return sorted(set(words(title)), key=lambda w: (-len(w), w))[:limit]


def rank(
    new: Counter[str], candidates: Iterable[tuple[int, str, str]], *, limit: int = 5
) -> list[tuple[int, float]]:
    """``(id, similarity)`` of the most similar candidates above the threshold, best first."""
    scored = [(issue_id, cosine(new, profile(title, body))) for issue_id, title, body in candidates]
    kept = [(issue_id, round(score, 3)) for issue_id, score in scored if score >= MIN_SIMILARITY]
    return sorted(kept, key=lambda pair: (-pair[1], pair[0]))[:limit]
