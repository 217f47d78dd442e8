"""How query latency and serving memory grow with the corpus: 10 %, 30 % and 100 % of a full knowledge base.

    python -m eval.bench_scale --kb /work/devkb/full
    policyqa bench scale --kb /work/devkb/full --fractions 0.1,0.3,1 --requests 100 --json eval/results/bench-scale-full.json
    policyqa bench scale --kb /work/kbs/full --factor 10 --json eval/results/bench-scale-x10.json   # a province: 10×

The smaller knowledge bases are derived from a private copy of the full one by removing documents (whole
works, seeded; works a gold question cites are always kept so answerable questions stay answerable), which
rebuilds the indexes from the stored embeddings, so nothing is re-embedded and every scale uses the very same
vectors. At each scale: HTTP latency (sequential, and concurrent clients) against a `policyqa serve`
subprocess, its RSS, the in-process engine's latency, and the floors (BM25 alone, FAISS alone) at that size.

With `--factor N` it goes the other way, to N× the corpus (synthesized: eval/scale_synth.py), and measures the indexes
alone at factor 1 and factor N in one run: exact FAISS, HNSW and IVF (build time, memory, p50/p95, recall@10 against
exact search), and BM25.
"""
from __future__ import annotations

import gc
import os
import random
import shutil
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from knowledge_base.db import DocumentRow
from knowledge_base.indexes import IndexSet
from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBase
from knowledge_base.text import tokenize
from qa_service.engine import QAEngine, load_query_embedder

from .bench_query import DEFAULT_GOLD, FLOOR_K, _cycle, copy_kb, http_concurrent, http_sequential, question_pool
from . import scale_synth
from .benchutil import ServerProcess, finish, fmt_lat, hwm_mb, latency_summary, machine_info, rss_mb
from .gold import load_gold
from .metrics import squash


def gold_sources(gold_files: list[Path]) -> list[str]:
    out: set[str] = set()
    for f in gold_files:
        if f.exists():
            for q in load_gold(f):
                out.update(squash(s) for s in q.sources)
    return sorted(out)


def derive_subset(kb_dir: Path, fraction: float, seed: int, keep_titles: list[str]) -> dict:
    """Remove documents from the knowledge base in `kb_dir` (a private copy) until `fraction` of them remain."""
    kb = KnowledgeBase(kb_dir)
    with kb.session() as s:
        rows = s.execute(select(DocumentRow.doc_id, DocumentRow.work_id, DocumentRow.title)).all()
    works: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for doc_id, work_id, title in rows:
        works.setdefault(work_id, []).append(doc_id)
        titles[work_id] = squash(title)
    target = max(1, round(len(rows) * fraction))
    must = [w for w in works if any(t in titles[w] for t in keep_titles)]
    rest = sorted(w for w in works if w not in set(must))
    random.Random(seed).shuffle(rest)
    kept, n = set(must), sum(len(works[w]) for w in must)
    for w in rest:
        if n >= target:
            break
        kept.add(w)
        n += len(works[w])
    remove = [d for w, docs in works.items() if w not in kept for d in docs]
    t0 = time.perf_counter()
    if remove:
        kb.commit_ingest([], encoder=None, remove_doc_ids=remove)
    return {"documents": n, "documents_full": len(rows), "works_kept_for_gold": len(must),
            "rebuild_seconds": time.perf_counter() - t0}


def index_floors(kb_dir: Path, embedder, questions: list[str]) -> dict:
    kb = KnowledgeBase(kb_dir)
    ix = IndexSet.load(kb.generation_dir(kb.state().generation))
    vecs = [embedder.embed_query(q) for q in questions]
    toks = [tokenize(q) for q in questions]
    faiss_ms, bm25_ms = [], []
    for v, tk in zip(vecs, toks):
        t = time.perf_counter()
        ix.dense_search(v, FLOOR_K)
        faiss_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ix.lexical_search(tk, FLOOR_K)
        bm25_ms.append((time.perf_counter() - t) * 1000)
    size = sum(f.stat().st_size for f in ix.directory.rglob("*") if f.is_file())
    return {"chunks": len(ix), "index_mb": size / 1e6, "faiss_alone": latency_summary(faiss_ms),
            "bm25_alone": latency_summary(bm25_ms)}


def in_process_latency(kb_dir: Path, questions: list[str]) -> dict:
    engine = QAEngine(KnowledgeBase(kb_dir), get_settings())
    engine.ask(questions[0], record=False)
    lat = []
    t0 = time.perf_counter()
    for q in questions:
        t = time.perf_counter()
        engine.ask(q, record=False)
        lat.append((time.perf_counter() - t) * 1000)
    out = latency_summary(lat, time.perf_counter() - t0)
    del engine
    gc.collect()
    return out


def factor_scale(kb: Path, factor: int, noise: float, held_out: int, questions: list[str], seed: int) -> dict:
    """Index figures at factor 1 and factor `factor` of the corpus (see eval/scale_synth.py)."""
    private = copy_kb(kb)
    try:
        corpus = scale_synth.load_corpus(private)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    base, held = scale_synth.split_held_out(corpus, held_out, seed)
    del corpus
    enc = KnowledgeBase(kb).encoder()
    embedder = load_query_embedder(enc.spec, enc.backend)
    qvecs = np.vstack([embedder.embed_query(q) for q in questions]).astype(np.float32)
    qtoks = [tokenize(q) for q in questions]
    scales = []
    for n in sorted({1, factor}):
        t = time.perf_counter()
        vectors, tokens = scale_synth.synthesize(base, n, noise, seed) if n > 1 else (base.vectors, base.tokens)
        synth_s = time.perf_counter() - t
        dense = scale_synth.measure_dense(vectors, {"questions": qvecs, "held_out": held}, qvecs)
        bm25 = scale_synth.measure_bm25(tokens, qtoks)
        scales.append({"factor": n, "chunks": len(tokens), "synthesis_s": synth_s, "dense": dense, "bm25": bm25,
                       "process_rss_mb": rss_mb()})
        del vectors, tokens
        gc.collect()
    return {"kb": str(kb), "model": enc.model_id, "noise": noise, "held_out": len(held), "questions": len(questions),
            "scales": scales}


def print_factor(console, result: dict) -> None:
    def fmt_lat(s: dict) -> str:
        return f"{s['p50']:.2f} / {s['p95']:.2f}"

    t = Table(title=f"dense indexes at factor 1 and {result['scales'][-1]['factor']} (one thread per query; recall@10 "
                    f"against exact on {result['questions']} questions / {result['held_out']} held-out chunks)")
    for col in ("factor", "chunks", "index", "build s", "file MB", "RSS MB", "ms p50/p95 k=10", "ms p50/p95 k=400",
                "recall@10 q (k=10 / k=400)", "recall@10 held-out (k=10 / k=400)"):
        t.add_column(col, justify="right")
    for sc in result["scales"]:
        for r in sc["dense"]:
            name = {"flat": "exact (IndexFlatIP)", "hnsw": f"HNSW M=32 ef={r['param']}",
                    "ivf": f"IVF nprobe={r['param']}"}[r["index"]]
            t.add_row(str(sc["factor"]), str(sc["chunks"]), name, f"{r['build_s']:.1f}", f"{r['file_mb']:.0f}",
                      f"{r['rss_mb']:.0f}", fmt_lat(r["latency_k10"]), fmt_lat(r["latency_k400"]),
                      f"{r['recall10_questions']:.4f} / {r['recall10_questions_k400']:.4f}",
                      f"{r['recall10_held_out']:.4f} / {r['recall10_held_out_k400']:.4f}")
            if "latency_matmul" in r:
                t.add_row("", "", "exact, as the retriever (matrix product + top 400)", "", "", "",
                          fmt_lat(r["latency_matmul"]), "", "", "")
    console.print(t)
    b = Table(title="BM25 (bm25s) at the same scales")
    for col in ("factor", "chunks", "build s", "file MB", "RSS MB", "ms top 10 p50/p95", "ms all scores p50/p95 (retriever)",
                "process RSS MB"):
        b.add_column(col, justify="right")
    for sc in result["scales"]:
        r = sc["bm25"]
        b.add_row(str(sc["factor"]), str(sc["chunks"]), f"{r['build_s']:.1f}", f"{r['file_mb']:.0f}",
                  f"{r['rss_mb']:.0f}", fmt_lat(r["latency_top10"]), fmt_lat(r["latency_all_scores"]),
                  f"{sc['process_rss_mb'] or 0:.0f}")
    console.print(b)


# over 60 lines: a typer command: its options are its signature
def main(
    kb: Path = typer.Option(..., "--kb", help="The full knowledge base (read only: a private copy is used)."),
    fractions: str = typer.Option("0.1,0.3,1.0", "--fractions", help="Shares of the documents to keep."),
    gold: list[Path] = typer.Option(DEFAULT_GOLD, "--gold", help="Gold files: questions asked, and works always kept."),
    requests: int = typer.Option(100, "--requests", min=1, max=2000, help="Requests per pass per scale (bounded)."),
    concurrency: int = typer.Option(8, "--concurrency", min=0, max=64, help="Concurrent HTTP clients (0: skip)."),
    seed: int = typer.Option(0, "--seed"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON."),
    factor: int = typer.Option(0, "--factor", min=0, max=20, help="Instead: the indexes at factor 1 and N× the corpus (synthesized)."),
    noise: float = typer.Option(0.2, "--noise", min=0.0, max=2.0, help="With --factor: norm of the noise added to a re-issued chunk's vector."),
    held_out: int = typer.Option(300, "--held-out", min=10, max=5000, help="With --factor: real chunks held out as queries."),
) -> None:
    """Latency and memory at 10 %, 30 % and 100 % of the corpus (same embeddings at every scale), or at N× (--factor)."""
    console = Console()
    machine = machine_info()
    if factor:
        result = factor_scale(kb, factor, noise, held_out, question_pool(gold)[:requests], seed)
        print_factor(Console(width=max(console.width, 200)), result)  # ten columns
        machine["load_average_end"] = machine_info()["load_average"]
        finish(console, machine, {"machine": machine, **result}, json_out)
        return
    shares = sorted(float(f) for f in fractions.split(",") if f.strip())
    pool = question_pool(gold)
    questions = _cycle(pool, requests)
    keep = gold_sources(gold)
    enc = KnowledgeBase(kb).encoder()
    embedder = load_query_embedder(KnowledgeBase(kb).encoder_source(enc.spec), enc.backend)  # what the engine encodes questions with
    results = []
    for share in shares:
        private = copy_kb(kb)
        try:
            subset = derive_subset(private, share, seed, keep) if share < 1.0 else {"documents": None}
            floors = index_floors(private, embedder, pool[: min(len(pool), requests)])
            inproc = in_process_latency(private, questions)
            with ServerProcess(private, log_path=private / "server.log") as srv:
                start_rss = rss_mb(srv.pid)
                seq = http_sequential(srv.url, questions)
                conc = http_concurrent(srv.url, questions, concurrency) if concurrency else None
                end_rss, peak = rss_mb(srv.pid), hwm_mb(srv.pid)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        row = {"fraction": share, "subset": subset, **floors, "in_process": inproc, "http_sequential": seq,
               "http_concurrent": conc, "server_rss_mb": {"after_startup": start_rss, "end": end_rss, "peak": peak}}
        results.append(row)
        console.print(f"{share:.0%}: {floors['chunks']} chunks · HTTP {fmt_lat(seq['latency'])} · server RSS "
                      f"{end_rss or 0:.0f} MB", highlight=False)
    machine["load_average_end"] = machine_info()["load_average"]

    t = Table(title=f"scale: latency (ms) and memory vs corpus share ({requests} requests per pass, model {enc.model_id})")
    for col in ("share", "chunks", "index MB", "in-process p50/p95", "HTTP seq p50/p95/p99", "HTTP conc p50/p95 · req/s",
                "server RSS MB (end/peak)", "floor: BM25 p50", "floor: FAISS p50"):
        t.add_column(col, justify="right")
    for r in results:
        ip, sq, cc = r["in_process"], r["http_sequential"]["latency"], (r["http_concurrent"] or {}).get("latency")
        t.add_row(
            f"{r['fraction']:.0%}", str(r["chunks"]), f"{r['index_mb']:.0f}",
            f"{ip['p50']:.1f} / {ip['p95']:.1f}",
            f"{sq['p50']:.1f} / {sq['p95']:.1f} / {sq['p99']:.1f}",
            f"{cc['p50']:.1f} / {cc['p95']:.1f} · {cc['req_per_s']:.1f}" if cc else "–",
            f"{r['server_rss_mb']['end'] or 0:.0f} / {r['server_rss_mb']['peak'] or 0:.0f}",
            f"{r['bm25_alone']['p50']:.2f}", f"{r['faiss_alone']['p50']:.2f}",
        )
    console.print(t)
    console.print(f"encoder alone does not depend on the corpus size; this process RSS {rss_mb() or 0:.0f} MB",
                  highlight=False)
    finish(console, machine, {"machine": machine, "kb": str(kb), "model": enc.model_id, "requests": requests,
                              "scales": results}, json_out)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    typer.run(main)
