"""Condensing long bills section by section so they fit a model's context, never truncated.

A bill is split on its ``SECTION n.`` / ``SEC. n.`` markers; a section still too large for one
call (or a bill without markers) is split further into token windows on sentence boundaries.
Each chunk gets a structured extraction (:class:`ChunkExtraction`), run concurrently with a
bound, and the digest lists every chunk under its section reference.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._schemas import ChunkExtraction

__all__ = ["Chunk", "condense_chunks", "render_digest", "split_chunks", "split_sections"]

_MARKER = re.compile(r"\b(SECTION|SEC\.)\s+(\d+(?:\.\d+)*[A-Za-z]?)\.")
_SENTENCE = re.compile(r"(?<=[.;:!?])\s+|\n{2,}")

TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a bill to condense.

    Attributes:
        ref: Section reference (``Preamble``, ``SEC. 2``, ``SECTION 1 (part 2/3)``).
        text: The piece's text.
    """

    ref: str
    text: str


def _label(kind: str, number: str) -> str:
    return f"{'SECTION' if kind == 'SECTION' else 'SEC.'} {number}"


def split_sections(text: str) -> list[Chunk]:
    """Split a bill on its section markers, keeping the text before the first as ``Preamble``.

    Repeated markers (``SECTION 1. SECTION 1.``, a heading followed by the section's own
    first line) belong to one section.

    Args:
        text: The bill text.

    Returns:
        Chunks in bill order; a single ``Bill text`` chunk when there are no markers.
    """
    matches = list(_MARKER.finditer(text))
    if not matches:
        return [Chunk("Bill text", text.strip())] if text.strip() else []
    chunks: list[Chunk] = []
    head = text[: matches[0].start()].strip()
    if head:
        chunks.append(Chunk("Preamble", head))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        label = _label(match.group(1), match.group(2))
        body = text[match.start() : end].strip()
        if chunks and chunks[-1].ref == label:
            chunks[-1] = Chunk(label, f"{chunks[-1].text} {body}")
        else:
            chunks.append(Chunk(label, body))
    return chunks


def _windows(text: str, limit: int, count: TokenCounter) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` tokens on sentence boundaries."""
    pieces: list[str] = []
    for sentence in _SENTENCE.split(text):
        if not sentence.strip():
            continue
        if count(sentence) <= limit:
            pieces.append(sentence)
            continue
        # A run-on "sentence" longer than a window: fall back to word runs.
        words = sentence.split()
        step = max(1, len(words) * limit // max(count(sentence), 1) // 2)
        pieces.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    windows: list[str] = []
    current: list[str] = []
    used = 0
    for piece in pieces:
        size = count(piece) + 1
        if current and used + size > limit:
            windows.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += size
    if current:
        windows.append(" ".join(current))
    return windows


def split_chunks(text: str, chunk_tokens: int, count: TokenCounter) -> list[Chunk]:
    """Split a bill into chunks of at most ``chunk_tokens`` tokens, by section first.

    Args:
        text: The bill text.
        chunk_tokens: Token limit per chunk.
        count: Token counter for the condensing model.

    Returns:
        Chunks in bill order; oversized sections become ``ref (part i/n)`` windows.
    """
    out: list[Chunk] = []
    for section in split_sections(text):
        if count(section.text) <= chunk_tokens:
            out.append(section)
            continue
        parts = _windows(section.text, chunk_tokens, count)
        out.extend(
            Chunk(f"{section.ref} (part {i}/{len(parts)})", part)
            for i, part in enumerate(parts, start=1)
        )
    return out


async def condense_chunks(
    chunks: Sequence[Chunk],
    extract: Callable[[Chunk, int, int], Awaitable[ChunkExtraction]],
    concurrency: int,
) -> list[ChunkExtraction]:
    """Extract every chunk concurrently (at most ``concurrency`` at once), in bill order.

    Args:
        chunks: The chunks.
        extract: ``extract(chunk, index, total)`` returning the chunk's extraction.
        concurrency: Bound on calls in flight.

    Returns:
        One extraction per chunk, its ``section`` set to the chunk's reference.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, chunk: Chunk) -> ChunkExtraction:
        async with gate:
            found = await extract(chunk, i, len(chunks))
        # The reference is ours, not the model's: the digest must name every section exactly.
        return found.model_copy(update={"section": chunk.ref})

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(i, c)) for i, c in enumerate(chunks, start=1)]
    return [t.result() for t in tasks]


def render_digest(extractions: Sequence[ChunkExtraction]) -> str:
    """Render extractions as the condensed bill the analysis steps read.

    Args:
        extractions: One per chunk, in bill order.

    Returns:
        ``[SEC. 2] summary`` paragraphs with amounts, dates and affected parties.
    """
    lines: list[str] = []
    for ex in extractions:
        parts = [f"[{ex.section}] {ex.summary.strip()}"]
        if ex.amounts:
            parts.append("Amounts: " + "; ".join(ex.amounts))
        if ex.dates:
            parts.append("Dates: " + "; ".join(ex.dates))
        if ex.affected_parties:
            parts.append("Affected: " + "; ".join(ex.affected_parties))
        lines.append("\n".join(parts))
    return "\n\n".join(lines)
