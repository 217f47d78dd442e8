"""A real knowledge base at N× the corpus, for the serving figures of a province (issue 22): what `policyqa serve`
and the in-process engine cost over 500,000 chunks, beside the knowledge base it was made from.

    python -m eval.scale_kb --kb /work/kbs/full --factor 10 --out /work/kbs/x10     # about 3 minutes, 12 GB peak
    policyqa bench query --kb /work/kbs/x10 --concurrency 8 --json eval/results/bench-query-x10.json

Built through the public ingest and store APIs, so the result is an ordinary knowledge base. Each city's local
document is parsed and chunked once, then re-issued under other prefecture-level cities' names (from
knowledge_base/data/divisions.tsv, two-character names outside the corpus's own cities, so every copy is a distinct
document): its text, title, 文号, publisher, sections, chunks and BM25 tokens with the city's name replaced, its
vectors the real chunks' plus seeded Gaussian noise of norm `noise` (re-normalized); nothing is re-embedded.
National and provincial documents stay single. One commit builds the index generation, so above
`POLICYQA_APPROX_INDEX_MIN_CHUNKS` it is the approximate index the service would use.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy import select

from ingest.chunking import Chunker
from ingest.parse import parse_document
from knowledge_base.db import DocumentRow
from knowledge_base.store import KnowledgeBase, NewVersion, doc_id_for
from knowledge_base.text import tokenize
from knowledge_base.versions import normalize_title

from .bench_query import copy_kb
from .scale_synth import CITIES


def issuer_names(divisions: Path = Path(__file__).resolve().parents[1] / "knowledge_base" / "data" / "divisions.tsv") -> list[str]:
    """Two-character prefecture-level city names (长春, 洛阳, …) outside the corpus's own cities, in file order."""
    names = []
    for line in divisions.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        names += [n[:2] for n in line.split()[1:] if n.endswith("市") and len(n) == 3 and n[:2] not in CITIES]
    return names


def build_scaled_kb(kb_dir: Path, out: Path, factor: int, noise: float = 0.2, seed: int = 0) -> dict:
    """Write at `out` a copy of the knowledge base at `kb_dir` grown to about `factor` × its chunks (module docstring)."""
    if out.exists():
        raise SystemExit(f"{out} exists: give a new directory")
    t0 = time.perf_counter()
    shutil.copytree(copy_kb(kb_dir), out)
    kb = KnowledgeBase(out)
    records = kb.chunk_records()
    vectors: dict[str, list[np.ndarray]] = {}
    for r in records:
        vectors.setdefault(r.doc_id, []).append(r.vector)
    with kb.session() as s:
        rows = s.execute(select(DocumentRow.doc_id, DocumentRow.region, DocumentRow.source_path)
                         .order_by(DocumentRow.doc_id)).all()
    chunker = Chunker()
    local = []
    for r in rows:
        if r.region in CITIES and r.source_path and Path(r.source_path).is_file():
            document = parse_document(Path(r.source_path))
            chunks = chunker.run(document, r.doc_id)
            local.append((r, document, chunks, [tokenize(c.embed_text) for c in chunks]))
    rng = np.random.default_rng(seed)
    names, target = issuer_names(), factor * len(records)
    versions, added, copies = [], 0, 0
    while local and len(records) + added < target and copies < len(names):
        other = names[copies]
        copies += 1
        for r, document, chunks, tokens in local:
            if len(records) + added >= target:
                break
            version = _reissued(r, document, chunks, tokens, other)
            base = np.stack(vectors[r.doc_id])[np.arange(len(version.chunks)) % len(vectors[r.doc_id])]
            v = base + rng.standard_normal(base.shape, dtype=np.float32) * (noise / np.sqrt(base.shape[1]))
            versions.append(replace(version, vectors=(v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)))
            added += len(version.chunks)
    t_prepare = time.perf_counter() - t0
    generation = kb.commit_ingest(versions, encoder=kb.encoder())
    return {"factor": factor, "noise": noise, "seed": seed, "chunks_before": len(records), "chunks_added": added,
            "chunks": len(records) + added, "documents_added": len(versions), "copies": copies, "generation": generation,
            "seconds_prepare": round(t_prepare, 1), "seconds_commit": round(time.perf_counter() - t0 - t_prepare, 1)}


def _reissued(row, document, chunks, tokens, other: str) -> NewVersion:
    """The parsed document as if the city `other` had issued it instead of `row.region` (names of equal length)."""
    own = row.region
    swap = lambda text: text.replace(own, other) if text else text  # noqa: E731
    meta = replace(document.meta, title=swap(document.meta.title), doc_number=swap(document.meta.doc_number),
                   publisher=swap(document.meta.publisher), region=other, source_path=f"{row.source_path}#{other}")
    text = swap(document.text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    doc_id = doc_id_for(normalize_title(meta.title), digest)
    sections = [replace(s, text=swap(s.text), path=[swap(p) for p in s.path]) for s in document.sections]
    renamed = [replace(c, chunk_id=f"{doc_id}-{c.ordinal}", doc_id=doc_id, text=swap(c.text), embed_text=swap(c.embed_text),
                       section_path=swap(c.section_path)) for c in chunks]
    return NewVersion(replace(document, meta=meta, text=text, sections=sections), digest, renamed,
                      [[swap(t) for t in ts] for ts in tokens], np.empty((len(renamed), 0), np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_scaled_kb(args.kb, args.out, args.factor, args.noise, args.seed))


if __name__ == "__main__":
    main()
