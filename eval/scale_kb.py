"""A real knowledge base at N× the corpus, for the serving figures of a province (issue 22): what `policyqa serve`
and the in-process engine cost over 500,000 chunks, beside the knowledge base it was made from.

    python -m eval.scale_kb --kb /work/kbs/full --factor 10 --out /work/kbs/x10
    policyqa bench query --kb /work/kbs/x10 --json eval/results/bench-query-x10.json

Built the way eval/scale_synth.py builds its vectors, but through the public ingest and store APIs, so the result is
an ordinary knowledge base: every city's local document is parsed again from its source file and re-issued for other
cities (its text, title, 文号 and region with the city's name replaced, so BM25 and the citations see other cities),
chunked by the ingest chunker, and stored with its real chunks' vectors plus seeded Gaussian noise of norm `noise`
(re-normalized): nothing is re-embedded. National and provincial documents stay single. One commit builds the index
generation, so above `POLICYQA_APPROX_INDEX_MIN_CHUNKS` it is the approximate index the service would use.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from collections import defaultdict
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


def _reissued(path: Path, own: str, other: str):
    """The document at `path` as if `other` had issued it instead of `own` (same length: every name has 2 characters)."""
    document = parse_document(path)
    swap = lambda text: text.replace(own, other) if text else text  # noqa: E731
    meta = replace(document.meta, title=swap(document.meta.title), doc_number=swap(document.meta.doc_number),
                   publisher=swap(document.meta.publisher), region=other, source_path=f"{path}#{other}")
    sections = [replace(s, text=swap(s.text), path=[swap(p) for p in s.path]) for s in document.sections]
    return replace(document, meta=meta, text=swap(document.text), sections=sections)


def build_scaled_kb(kb_dir: Path, out: Path, factor: int, noise: float = 0.2, seed: int = 0) -> dict:
    """Write at `out` a copy of the knowledge base at `kb_dir` grown to about `factor` × its chunks (module docstring)."""
    if out.exists():
        raise SystemExit(f"{out} exists: give a new directory")
    t0 = time.perf_counter()
    shutil.copytree(copy_kb(kb_dir), out)
    kb = KnowledgeBase(out)
    records = kb.chunk_records()
    by_doc: dict[str, list] = defaultdict(list)
    for r in records:
        by_doc[r.doc_id].append(r)
    with kb.session() as s:
        rows = s.execute(select(DocumentRow.doc_id, DocumentRow.region, DocumentRow.source_path).order_by(DocumentRow.doc_id)).all()
    local = [r for r in rows if r.region in CITIES and r.source_path and Path(r.source_path).is_file()]
    target = factor * len(records)
    rng = np.random.default_rng(seed)
    chunker, versions, added, copy = Chunker(), [], 0, 0
    seen = {r.doc_id for r in rows}
    while len(records) + added < target and local:
        copy += 1
        for d in local:
            if len(records) + added >= target:
                break
            other = CITIES[(CITIES.index(d.region) + copy) % len(CITIES)]
            if other == d.region:
                continue
            document = _reissued(Path(d.source_path), d.region, other)
            digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
            doc_id = doc_id_for(normalize_title(document.meta.title), digest)
            if doc_id in seen:  # two cities' documents re-issued alike (the same model regulation) are one document
                continue
            seen.add(doc_id)
            chunks = chunker.run(document, doc_id)
            real = np.stack([r.vector for r in by_doc[d.doc_id]])
            base = real[np.arange(len(chunks)) % len(real)]
            v = base + rng.standard_normal(base.shape, dtype=np.float32) * (noise / np.sqrt(base.shape[1]))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            versions.append(NewVersion(document, digest, chunks, [tokenize(c.embed_text) for c in chunks], v))
            added += len(chunks)
    t_build = time.perf_counter() - t0
    generation = kb.commit_ingest(versions, encoder=kb.encoder())
    return {"factor": factor, "noise": noise, "seed": seed, "chunks_before": len(records), "chunks_added": added,
            "chunks": len(records) + added, "documents_added": len(versions), "copies": copy, "generation": generation,
            "seconds_prepare": round(t_build, 1), "seconds_commit": round(time.perf_counter() - t0 - t_build, 1)}


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
