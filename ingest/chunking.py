"""Stage 5 of ingest: cut a parsed document into retrieval chunks, one article / outline item per chunk where it fits.

    from ingest.chunking import Chunker
    chunks = Chunker(min_chars=150, max_chars=600, overlap=80).run(parsed_doc, doc_id="d-1")
    chunks[0].chunk_id, chunks[0].section_path  # ("d-1:0", "第一章 总则 > 第一条")

Rules:
- a section that fits in `max_chars` is one chunk;
- a section shorter than `min_chars` absorbs the following sections shorter than `min_chars` under the same
  parent (siblings, or its own children when it is a heading's intro) until it reaches `min_chars`, never
  beyond `max_chars`; a section of normal size always keeps a chunk of its own;
  path = parent + "第一条至第三条" for siblings, the heading's path for an intro (["正文"] for the text before the
  first heading), anchor = the first section's;
- a longer section is split only at sentence ends (。！？；!?; and line breaks), into pieces of similar size,
  each next piece repeating the previous piece's last whole sentence(s) up to `overlap` characters;
  one sentence longer than `max_chars` is left whole rather than cut mid-sentence;
- passages with no letter, digit or CJK character are dropped.
`Chunk.text` is the passage as printed; `Chunk.embed_text` = title, section path and text, so a short article
is still found by the name of its law and chapter.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ingest.structure import PREAMBLE
from knowledge_base.models import Chunk, ParsedDocument, Section

# A sentence ends at 。！？；!?; (plus closing quotes/brackets right after) or at a line break.
_SENTENCE = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’\"'」』）)\]】]*\n?|\n)|[^。！？；!?;\n]+")
_CONTENT = re.compile(r"\w")  # \w covers CJK ideographs, letters and digits


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, each keeping its terminator and trailing line break; "".join() gives back `text`.

        split_sentences("第一条 甲。乙；\\n丙")  # ["第一条 甲。", "乙；\\n", "丙"]
    """
    return [s for s in _SENTENCE.findall(text) if s]


def _is_heading_line(sentence: str) -> bool:
    """A short line without sentence-final punctuation: a heading or label, not the end of a sentence."""
    line = sentence.strip()
    return sentence.endswith("\n") and 0 < len(line) <= 40 and not line.endswith(tuple("。！？；!?;：:，,、"))


@dataclass
class _Unit:
    """A passage on its way to becoming a chunk."""

    path: list[str]
    anchor: str
    text: str
    mergeable: bool

    def __post_init__(self) -> None:
        self.first_label = self.last_label = self.path[-1] if self.path else ""


class Chunker:
    """Section-aware chunker; see the module docstring for the rules.

        Chunker(max_chars=400).run(doc, "doc-1")  # list[Chunk]
    """

    def __init__(self, min_chars: int = 150, max_chars: int = 600, overlap: int = 80) -> None:
        if not 0 <= overlap < max_chars or not 0 <= min_chars <= max_chars:
            raise ValueError("need 0 <= overlap < max_chars and 0 <= min_chars <= max_chars")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.overlap = overlap

    def run(self, doc: ParsedDocument, doc_id: str) -> list[Chunk]:
        """Chunks of `doc` in reading order, ids f"{doc_id}:{ordinal}"."""
        units = self._merge(self._units(doc.sections))
        chunks: list[Chunk] = []
        for unit in units:
            section_path = " > ".join(unit.path)
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}:{len(chunks)}",
                    doc_id=doc_id,
                    ordinal=len(chunks),
                    section_path=section_path,
                    anchor=unit.anchor,
                    text=unit.text,
                    embed_text=f"{doc.meta.title}\n{section_path}\n{unit.text}",
                )
            )
        return chunks

    def split(self, text: str) -> list[str]:
        """Pieces of `text` no longer than max_chars (unless one sentence is), cut at sentence ends, overlapping.

            Chunker(max_chars=20, overlap=8).split("甲甲甲甲甲。乙乙乙乙乙乙乙。丙丙丙丙丙丙丙。")
        """
        text = text.strip()
        if len(text) <= self.max_chars:
            return [text]
        sentences = split_sentences(text)
        # Aim for pieces of equal size so the last one is not a stub; overlap makes each piece a little longer.
        count = math.ceil((len(text) - self.overlap) / (self.max_chars - self.overlap))
        target = len(text) / max(count, 1)
        pieces: list[list[str]] = []
        current: list[str] = []
        size = 0
        fresh = 0  # characters in `current` that are not overlap
        for sentence in sentences:
            if current and fresh and (size + len(sentence) > self.max_chars or fresh >= target):
                # A heading line ("（三）非金属矿产") belongs with the text after it, not at the end of a piece.
                last = current[-1]
                movable = fresh > len(last) and len(last) + len(sentence) <= self.max_chars
                carry = [current.pop()] if len(current) > 1 and movable and _is_heading_line(last) else []
                pieces.append(current)
                current = self._overlap_tail(current, len(sentence) + sum(len(c) for c in carry)) + carry
                size = sum(len(s) for s in current)
                fresh = sum(len(c) for c in carry)
            current.append(sentence)
            size += len(sentence)
            fresh += len(sentence)
        if current and fresh:
            pieces.append(current)
        return [p for p in ("".join(piece).strip() for piece in pieces) if p]

    # -------------------------------------------------------------------------------------------- internals

    def _overlap_tail(self, piece: list[str], next_len: int) -> list[str]:
        """The last whole sentences of `piece` (≤ overlap chars, never the whole piece) that still leave room."""
        tail: list[str] = []
        size = 0
        for sentence in reversed(piece[1:]):
            if size + len(sentence) > self.overlap or size + len(sentence) + next_len > self.max_chars:
                break
            tail.insert(0, sentence)
            size += len(sentence)
        return tail

    def _units(self, sections: list[Section]) -> list[_Unit]:
        units: list[_Unit] = []
        for section in sections:
            text = section.text.strip()
            if not _CONTENT.search(text):
                continue  # junk: punctuation / whitespace only
            if len(text) <= self.max_chars:
                units.append(_Unit(section.path, section.anchor, text, mergeable=True))
            else:
                for piece in self.split(text):
                    if _CONTENT.search(piece):
                        units.append(_Unit(section.path, section.anchor, piece, mergeable=False))
        return units

    def _merge(self, units: list[_Unit]) -> list[_Unit]:
        """Grow a chunk from tiny sections: while it is under min_chars, absorb the next tiny sibling (or, for
        an intro under a heading, the heading's tiny children) if the result still fits in max_chars."""
        merged: list[_Unit] = []
        for unit in units:
            prev = merged[-1] if merged else None
            if (
                prev is not None
                and prev.mergeable
                and unit.mergeable
                and len(prev.text) < self.min_chars
                and len(unit.text) < self.min_chars  # an article that is big enough keeps its own chunk
                and len(prev.text) + 1 + len(unit.text) <= self.max_chars
            ):
                # The preamble (正文) is the intro of the whole document: it absorbs like a heading's intro.
                intro = prev.path == [PREAMBLE] or unit.path[: len(prev.path)] == prev.path
                ancestor = bool(prev.path) and intro and prev.first_label == prev.last_label
                siblings = not ancestor and bool(prev.path) and prev.path[:-1] == unit.path[:-1]
                if siblings or ancestor:
                    prev.text = prev.text + "\n" + unit.text
                    if siblings:  # "第一条至第三条": the chunk cites every section it holds
                        prev.last_label = unit.last_label
                        first, last = prev.first_label, prev.last_label
                        prev.path = prev.path[:-1] + [first if first == last else f"{first}至{last}"]
                    continue
            merged.append(_Unit(list(unit.path), unit.anchor, unit.text, unit.mergeable))
        return merged
