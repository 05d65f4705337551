"""Retrieval-augmented generation: embeddings, a vector index and a model.

``llm/embed`` hashes the words of a text into a fixed-size unit vector, so
texts sharing words are close; ``vector/search`` ranks a small built-in
knowledge base by cosine similarity to the query vector; ``llm/generate``
answers from the passages it is given, citing them by number. Its confidence
is 0.9, or 0.35 when the question says it is unsure (``"unsure"``), or 0.1
when there are no passages: so ``rag.yaml`` replies to plain questions and
escalates unsure ones.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro.services.executor.handlers import TaskContext
from maestro_samples._fake import invalid, optional_text, require_secret, text

DIMENSIONS = 256
MIN_SCORE = 0.2
"""Cosine similarity below which a passage is not relevant."""
DEFAULT_TOP_K = 5
CONFIDENT = 0.9
UNSURE = 0.35
NO_PASSAGES = 0.1
CITED = 2
"""How many passages an answer quotes at most."""
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "my", "of", "on", "or", "the", "to", "what", "when", "where",
    "which", "with", "you", "your",
})  # fmt: skip


@dataclass(frozen=True)
class Article:
    """A knowledge-base article; empty ``products`` means every product."""

    id: str
    text: str
    products: tuple[str, ...] = ()


ARTICLES = (
    Article(
        "kb-password-reset",
        "To reset your password, open Settings > Security and choose Reset password. "
        "A reset link valid for 30 minutes is emailed to you.",
    ),
    Article(
        "kb-two-factor",
        "Two-factor authentication is turned on under Settings > Security > Two-factor. "
        "Keep the recovery codes somewhere safe: they are the only way back in.",
    ),
    Article(
        "kb-invoices",
        "Invoices are issued on the first day of each month and can be downloaded as PDF "
        "from Billing > Invoices. The invoice total includes tax for your country.",
    ),
    Article(
        "kb-refunds",
        "Annual plans are refunded pro rata: request a refund from Billing > Subscription "
        "within 30 days of the renewal.",
    ),
    Article(
        "kb-export",
        "Export a project as a ZIP archive from Project > Export. Exports over 1 GB are "
        "emailed to you as a download link.",
        ("cloud",),
    ),
    Article(
        "kb-desktop-sync",
        "The desktop app syncs every five minutes. Choose Sync now in the tray menu to "
        "sync at once.",
        ("desktop",),
    ),
)


def _words(value: str) -> list[str]:
    words = (w for w in _WORD.findall(value.lower()) if w not in _STOPWORDS)
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words]  # crude stemming


def embedding(value: str) -> list[float]:
    """A unit vector of ``value``'s words hashed into :data:`DIMENSIONS` buckets
    (all zeros for a text without words)."""
    vector = [0.0] * DIMENSIONS
    for word in _words(value):
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % DIMENSIONS
        vector[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [round(v / norm, 6) for v in vector] if norm else vector


@functools.cache
def _index() -> tuple[tuple[Article, tuple[float, ...]], ...]:
    return tuple((a, tuple(embedding(a.text))) for a in ARTICLES)


def _vector(value: Any) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != DIMENSIONS
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise invalid("INVALID_INPUT", f"input `vector` must be {DIMENSIONS} numbers")
    return [float(v) for v in value]


def _top_k(config: Mapping[str, Any]) -> int:
    value = config.get("topK", DEFAULT_TOP_K)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid("INVALID_CONFIG", "config `topK` must be a positive integer")
    return value


async def embed(ctx: TaskContext) -> Mapping[str, Any]:
    """Embeds a text (bag of hashed words, unit length)."""
    require_secret(ctx, "apiKey")
    return {"vector": embedding(text(ctx.input, "text"))}


async def search(ctx: TaskContext) -> Mapping[str, Any]:
    """Finds the knowledge-base passages closest to a vector, best first."""
    text(ctx.config, "index", where="config")
    query = _vector(ctx.input.get("vector"))
    product = optional_text(ctx.input, "product")
    scored = []
    for article, vector in _index():
        if product and article.products and product not in article.products:
            continue
        score = sum(q * v for q, v in zip(query, vector, strict=True))
        if score >= MIN_SCORE:
            scored.append((-score, article.id, article))
    hits = [article for _, _, article in sorted(scored)[: _top_k(ctx.config)]]
    return {"passages": [a.text for a in hits], "sourceIds": [a.id for a in hits]}


def _first_sentence(passage: str) -> str:
    head, dot, _ = passage.partition(". ")
    return head + "." if dot else passage


def answer(question: str, passages: Sequence[str]) -> tuple[str, float]:
    """The fake model's answer and its confidence (see the module docstring)."""
    if not passages:
        return "I could not find an answer to this in the knowledge base.", NO_PASSAGES
    cited = " ".join(f"{_first_sentence(p)} [{n}]" for n, p in enumerate(passages[:CITED], 1))
    return cited, UNSURE if "unsure" in question.lower() else CONFIDENT


async def generate(ctx: TaskContext) -> Mapping[str, Any]:
    """Answers a question from the given passages, citing them as [1], [2]."""
    require_secret(ctx, "apiKey")
    text(ctx.config, "model", where="config")
    question = text(ctx.input, "question")
    passages = ctx.input.get("passages") or []
    if not isinstance(passages, list) or not all(isinstance(p, str) for p in passages):
        raise invalid("INVALID_INPUT", "input `passages` must be a list of strings")
    reply, confidence = answer(question, passages)
    return {"answer": reply, "confidence": confidence}
