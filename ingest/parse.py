"""The parsing half of ingest in one call: load → clean → extract metadata (+ sidecar) → structure.

    from ingest.parse import parse_document
    doc = parse_document(Path("shared/corpus/national/行政法规/失业保险条例(1999-01-22).md"))
    doc.meta.title, len(doc.sections)  # ("失业保险条例", 42)

`ParsedDocument.text` is the cleaned body: site boilerplate and the metadata header (label lines, or a
regulation's promulgation lines, which live on in `meta.revision_notes`) are removed. Chunk it with
`ingest.chunking.Chunker`. Every failure is an `IngestError` naming the file.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ingest.cleaning import clean_text
from ingest.errors import IngestError
from ingest.loaders import load_file
from ingest.metadata import extract_metadata
from ingest.structure import parse_sections
from knowledge_base.models import ParsedDocument


def parse_document(path: Path) -> ParsedDocument:
    """Parse one document file; raises IngestError if it cannot be read or has no text.

        parse_document(Path("plan.html")).sections[0].path  # ["正文"]
    """
    path = Path(path)
    raw = load_file(path)
    cleaned = replace(raw, text=clean_text(raw.text))
    if not cleaned.text.strip():
        raise IngestError(path, "no text left after removing site boilerplate")
    meta, body = extract_metadata(cleaned)
    sections = parse_sections(body, meta)
    if not sections:
        raise IngestError(path, "no text content after the metadata header")
    return ParsedDocument(meta=meta, text=body, sections=sections)
