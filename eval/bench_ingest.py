"""Ingest throughput with a stage breakdown and peak memory, beside the encoder alone on the same chunks.

    python -m eval.bench_ingest                       # the whole ../shared/corpus into a temporary KB
    python -m eval.bench_ingest --fraction 0.1        # a seeded 10 % sample of the files
    policyqa bench ingest --fraction 0.3 --json /tmp/bench-ingest-30.json

Prints: files, chunks, characters; seconds per stage (parse, chunk, embed, index, …) with shares; chunks/s
end to end and in the embed stage; peak RSS of this process during the ingest; and the baseline, the
encoder alone (embed_passages on a seeded sample of the very chunks just ingested, same batch size),
with its chunks/s and the time the whole set would take at that rate. Figures are printed, never asserted.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from ingest.pipeline import IngestPipeline, discover
from knowledge_base.db import ChunkRow
from knowledge_base.encoder import get_embedder
from knowledge_base.store import KnowledgeBase

from .benchutil import PeakRss, finish, hwm_mb, machine_info

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def select_files(corpus: list[Path], fraction: float, seed: int) -> list[Path]:
    """Every ingestible file under the paths, or a seeded random `fraction` of them (same seed → same files)."""
    files, _ = discover(corpus)
    if fraction >= 1.0:
        return files
    n = max(1, round(len(files) * fraction))
    return sorted(random.Random(seed).sample(files, n))


def encoder_baseline(kb, texts: list[str], batch_size: int) -> dict:
    """The encoder alone: the KB's own model on the given texts, one timed pass after a small warm-up."""
    enc = kb.encoder()
    embedder = get_embedder(enc.spec, enc.backend) if enc and enc.spec else get_embedder()
    embedder.embed_passages(texts[: min(8, len(texts))], batch_size=batch_size)
    with PeakRss() as peak:
        t0 = time.perf_counter()
        embedder.embed_passages(texts, batch_size=batch_size)
        seconds = time.perf_counter() - t0
    return {
        "chunks": len(texts),
        "chars": sum(len(t) for t in texts),
        "seconds": seconds,
        "chunks_per_s": len(texts) / seconds if seconds else None,
        "peak_rss_mb": peak.mb,
        "model": getattr(embedder, "model_id", None),
        "backend": getattr(embedder, "backend", None),
    }


# over 60 lines: a typer command: its options are its signature
def main(
    corpus: list[Path] = typer.Option([DEFAULT_CORPUS], "--corpus", help="Corpus directories or files."),
    fraction: float = typer.Option(1.0, "--fraction", min=0.001, max=1.0, help="Share of the files (seeded sample)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the file sample and of the baseline sample."),
    batch_size: int = typer.Option(32, "--batch-size", help="Encoder batch size (pipeline and baseline alike)."),
    baseline_max: int = typer.Option(
        1000, "--baseline-max", help="Encoder-alone baseline on at most this many of the ingested chunks (0: all of them)."
    ),
    keep: Optional[Path] = typer.Option(None, "--keep", help="Build the KB here and keep it (must not exist)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON."),
) -> None:
    """Ingest throughput with a stage breakdown and peak RSS, beside the encoder alone on the same chunks."""
    console = Console()
    machine = machine_info()
    files = select_files(list(corpus), fraction, seed)
    source_bytes = sum(f.stat().st_size for f in files)
    if keep is not None and keep.exists():
        raise typer.BadParameter(f"{keep} exists; give a new directory")
    kb_dir = keep or Path(tempfile.mkdtemp(prefix="policyqa-bench-ingest-"))
    console.print(f"ingesting {len(files)} files ({source_bytes / 1e6:.1f} MB, fraction {fraction}) into {kb_dir} …",
                  highlight=False)
    try:
        kb = KnowledgeBase.open(kb_dir)
        with PeakRss() as peak:
            t0 = time.perf_counter()
            report = IngestPipeline(kb, batch_size=batch_size).run(files)
            wall = time.perf_counter() - t0
        with kb.session() as s:
            texts = list(s.scalars(select(ChunkRow.embed_text).order_by(ChunkRow.id)))
        sample = texts if baseline_max <= 0 or len(texts) <= baseline_max else random.Random(seed).sample(texts, baseline_max)
        baseline = encoder_baseline(kb, sample, batch_size)
        counts = report.counts()
        enc = kb.encoder()
    finally:
        if keep is None:
            shutil.rmtree(kb_dir, ignore_errors=True)
    machine["load_average_end"] = machine_info()["load_average"]

    stages = {k: float(v) for k, v in report.stage_seconds.items()}
    n_chunks = report.chunks_embedded
    embed_s = stages.get("embed", 0.0)
    result = {
        "machine": machine,
        "model": enc.model_id if enc else None,
        "backend": enc.backend if enc else None,
        "fraction": fraction,
        "seed": seed,
        "batch_size": batch_size,
        "files": len(files),
        "outcomes": counts,
        "source_mb": source_bytes / 1e6,
        "chunks": n_chunks,
        "chunk_chars_total": sum(len(t) for t in texts),
        "seconds_total": wall,
        "stage_seconds": stages,
        "chunks_per_s_end_to_end": n_chunks / wall if wall else None,
        "chunks_per_s_embed_stage": n_chunks / embed_s if embed_s else None,
        "files_per_s": len(files) / wall if wall else None,
        "peak_rss_mb_during_ingest": peak.mb,
        "rss_mb_before_ingest": peak.start_mb,
        "process_peak_rss_mb": hwm_mb(),
        "baseline_encoder_alone": baseline,
    }
    if baseline.get("chunks_per_s"):
        result["baseline_encoder_alone"]["projected_seconds_all_chunks"] = n_chunks / baseline["chunks_per_s"]
    load_s = stages.get("load_model", 0.0)
    result["chunks_per_s_excluding_model_load"] = n_chunks / (wall - load_s) if wall > load_s else None
    if fraction < 1.0 and wall:
        # loading the model is paid once, whatever the corpus size
        result["projected_full_corpus_seconds"] = load_s + (wall - load_s) / fraction

    table = Table(title=f"ingest: {len(files)} files, {n_chunks} chunks, {result['chunk_chars_total']:,} chunk chars "
                        f"({enc.model_id if enc else '?'}, {enc.backend if enc else '?'}, batch {batch_size})")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for name, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{sec:.1f}", f"{sec / wall:.0%}" if wall else "")
    table.add_row("[bold]total (wall)[/]", f"{wall:.1f}", "100%")
    console.print(table)
    b = baseline
    console.print(
        f"throughput: {result['chunks_per_s_end_to_end']:.1f} chunks/s end to end "
        f"({(result['chunks_per_s_excluding_model_load'] or 0):.1f} excluding the model load), "
        f"{(result['chunks_per_s_embed_stage'] or 0):.1f} chunks/s in the embed stage, {result['files_per_s']:.1f} files/s\n"
        f"baseline, encoder alone on {b['chunks']} of the same chunks: {b['chunks_per_s']:.1f} chunks/s "
        f"({b['seconds']:.1f} s; all {n_chunks} chunks would take {result['baseline_encoder_alone'].get('projected_seconds_all_chunks', 0):.0f} s)\n"
        f"memory: peak RSS during ingest {peak.mb:.0f} MB (RSS before {peak.start_mb or 0:.0f} MB); "
        f"encoder-alone peak {b['peak_rss_mb']:.0f} MB; process high-water {result['process_peak_rss_mb'] or 0:.0f} MB\n"
        f"outcomes: {counts}",
        highlight=False,
    )
    if "projected_full_corpus_seconds" in result:
        console.print(f"projected full corpus at this rate: {result['projected_full_corpus_seconds'] / 60:.1f} min "
                      f"(target ≤ 15 min)", highlight=False)
    else:
        console.print(f"full corpus: {wall / 60:.1f} min (target ≤ 15 min)", highlight=False)
    finish(console, machine, result, json_out)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    typer.run(main)
