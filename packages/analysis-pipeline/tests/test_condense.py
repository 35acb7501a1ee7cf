"""Splitting long bills into sections and windows, and condensing them in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from analysis_pipeline import ChunkExtraction
from analysis_pipeline._condense import (
    Chunk,
    condense_chunks,
    render_digest,
    split_chunks,
    split_sections,
)
from llm_client import count_tokens

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"


def _count(text: str) -> int:
    return count_tokens(text)


def test_sections_of_a_real_bill_merge_repeated_markers() -> None:
    text = (BILLS / "CA-AB2097-2022.txt").read_text()
    refs = [c.ref for c in split_sections(text)]
    assert refs == [
        "Preamble", "SECTION 1", "SEC. 1.1", "SEC. 1.2", "SEC. 1.3",
        "SEC. 2", "SEC. 3", "SEC. 4", "SEC. 5",
    ]  # fmt: skip
    assert " ".join(c.text for c in split_sections(text)).split() == text.split()


def test_nothing_is_lost_when_splitting() -> None:
    text = (BILLS / "IN-HB1007-2025.txt").read_text()
    chunks = split_chunks(text, 2000, _count)
    assert all(_count(c.text) <= 2000 for c in chunks)
    words = [w for c in chunks for w in c.text.split()]
    assert words == text.split()


def test_bill_without_markers_falls_back_to_windows() -> None:
    text = " ".join(f"Sentence number {i} says something about fees." for i in range(600))
    chunks = split_chunks(text, 300, _count)
    assert len(chunks) > 5
    assert chunks[0].ref == f"Bill text (part 1/{len(chunks)})"
    assert all(_count(c.text) <= 300 for c in chunks)


async def test_condense_keeps_order_and_our_section_refs() -> None:
    chunks = [Chunk(f"SEC. {i}", f"text {i}") for i in range(1, 8)]
    in_flight = 0
    peak = 0

    async def extract(chunk: Chunk, index: int, total: int) -> ChunkExtraction:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return ChunkExtraction(section="whatever the model says", summary=f"{index}/{total}")

    found = await condense_chunks(chunks, extract, concurrency=3)
    assert [e.section for e in found] == [c.ref for c in chunks]
    assert [e.summary for e in found] == [f"{i}/7" for i in range(1, 8)]
    assert peak <= 3
    digest = render_digest(found)
    assert all(f"[SEC. {i}]" in digest for i in range(1, 8))
