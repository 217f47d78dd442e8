"""Query latency in process and over HTTP (sequential and concurrent clients), per-stage breakdown, serving
memory, each beside its floor measured in the same run: the encoder alone, FAISS alone, a plain BM25 query.

    python -m eval.bench_query --kb /work/devkb/full
    policyqa bench query --kb /work/devkb/demo --requests 100 --concurrency 8 --json /tmp/bench-query-demo.json
    policyqa bench query --url http://a:8001 --url http://b:8002 --baseline-url http://c:8003   # running servers

With --url the servers are the ones given (e.g. replicas on one PostgreSQL): the concurrent clients are dealt out
over them in turn, as a load balancer would, and nothing runs in process; --baseline-url servers (e.g. one replica
on SQLite) are measured in the same run, after, with the same questions and clients, and printed beside them.

The HTTP part serves a temporary copy of the knowledge base (`policyqa serve` logs every ask, and the
knowledge base given may be shared and read-only) on a free loopback port with the rate limit off, sends a
bounded number of requests, and stops the server by its own pid. Questions: the gold files' questions,
cycled. Figures are printed, never asserted.
"""
from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBase
from knowledge_base.text import tokenize
from qa_service.demo import open_kb
from qa_service.engine import QAEngine

from .benchutil import ServerProcess, finish, fmt_lat, hwm_mb, latency_summary, machine_info, rss_mb
from .gold import load_gold

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLD = [ROOT.parent / "shared" / "eval" / "dev.jsonl", ROOT / "eval" / "questions" / "tune.jsonl",
                ROOT / "eval" / "questions" / "test.jsonl"]
STAGES = ("normalize", "encode", "faq", "lexical", "dense", "fuse", "candidates", "fetch", "judge", "compose", "render")
FLOOR_K = 100  # candidates per list, as the retriever takes them (knowledge_base.retrieval.CANDIDATES)


def question_pool(gold_files: list[Path]) -> list[str]:
    out: list[str] = []
    for f in gold_files:
        if f.exists():
            out += [q.question for q in load_gold(f)]
    if not out:
        raise typer.BadParameter(f"no questions in {', '.join(map(str, gold_files))}")
    return out


def _cycle(pool: list[str], n: int) -> list[str]:
    return [pool[i % len(pool)] for i in range(n)]


def measure_floors(engine, questions: list[str]) -> dict:
    """Each floor alone, per question: encoder (embed_query), FAISS search (k=100), BM25 (tokenize + top 100),
    and encoder + FAISS back to back (the dense path's floor)."""
    ix = engine.state.retriever.snapshot.indexes
    embedder = engine.embedder
    encode_ms, faiss_ms, bm25_ms, enc_faiss_ms = [], [], [], []
    embedder.embed_query(questions[0])  # warm-up
    for q in questions:
        t = time.perf_counter()
        vec = embedder.embed_query(q)
        t1 = time.perf_counter()
        ix.dense_search(vec, FLOOR_K)
        t2 = time.perf_counter()
        encode_ms.append((t1 - t) * 1000)
        enc_faiss_ms.append((t2 - t) * 1000)
        vec = embedder.embed_query(q)
        t = time.perf_counter()
        ix.dense_search(vec, FLOOR_K)
        faiss_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ix.lexical_search(tokenize(q), FLOOR_K)
        bm25_ms.append((time.perf_counter() - t) * 1000)
    return {
        "encoder_alone": latency_summary(encode_ms),
        "faiss_alone": latency_summary(faiss_ms),
        "bm25_alone": latency_summary(bm25_ms),
        "encoder_plus_faiss": latency_summary(enc_faiss_ms),
        "chunks_indexed": len(ix),
        "faiss_index": type(ix.dense).__name__ if ix.dense is not None else None,
    }


def in_process(engine, questions: list[str], mode: str) -> dict:
    engine.ask(questions[0], mode=mode, record=False)  # warm-up
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    answered = 0
    t0 = time.perf_counter()
    for q in questions:
        timings: dict = {}
        t = time.perf_counter()
        a = engine.ask(q, mode=mode, record=False, timings=timings)
        totals.append((time.perf_counter() - t) * 1000)
        answered += bool(a.answered)
        for name, ms in timings.items():
            if name != "total":
                stages.setdefault(name, []).append(float(ms))
    seconds = time.perf_counter() - t0
    n = len(questions)
    # A stage that did not run for a question (FAQ answered → no retrieval) counts 0 ms for it.
    breakdown = {name: latency_summary(vals + [0.0] * (n - len(vals))) | {"ran": len(vals)} for name, vals in stages.items()}
    return {"latency": latency_summary(totals, seconds), "stages": breakdown, "answered": answered}


def http_sequential(url: str | list[str], questions: list[str], route: str = "/v1/ask") -> dict:
    """One client, one question after another, on /v1/ask (or /v1/search, the operator's search-as-you-type); given
    several servers, it asks them in turn."""
    import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

    urls = [url] if isinstance(url, str) else list(url)

    def call(client, q):
        if route == "/v1/search":
            return client.get(route, params={"q": q})
        return client.post(route, json={"question": q})

    lat, errors = [], 0
    clients = [httpx.Client(base_url=u, timeout=60) for u in urls]
    try:
        for client in clients:
            call(client, questions[0])  # warm-up
        t0 = time.perf_counter()
        for i, q in enumerate(questions):
            t = time.perf_counter()
            r = call(clients[i % len(clients)], q)
            lat.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200
        seconds = time.perf_counter() - t0
    finally:
        for client in clients:
            client.close()
    return {"latency": latency_summary(lat, seconds), "errors": errors}


def in_process_search(engine, questions: list[str]) -> dict:
    """`QAEngine.search` per question (what /v1/search runs), with the engine's judge, and without one."""
    out = {}
    judge = engine.state.judge
    for name, j in (("with judge", judge), ("without judge (fused ranking)", None)):
        if name == "with judge" and judge is None:
            continue
        engine.use_judge(j)
        engine.search(questions[0])
        lat = []
        for q in questions:
            t = time.perf_counter()
            engine.search(q)
            lat.append((time.perf_counter() - t) * 1000)
        out[name] = latency_summary(lat, sum(lat) / 1000)
    engine.use_judge(judge)
    return out


def http_concurrent(url: str | list[str], questions: list[str], clients: int) -> dict:
    """`clients` threads, each with its own connection, take questions from one queue until it is empty; given
    several servers, client i talks to server i mod n (a round-robin load balancer's share)."""
    import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

    urls = [url] if isinstance(url, str) else list(url)

    work: queue.Queue[str] = queue.Queue()
    for q in questions:
        work.put(q)
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client_loop(url: str) -> None:
        mine, bad = [], 0
        with httpx.Client(base_url=url, timeout=120) as client:
            client.get("/healthz")  # open the connection before the clock starts
            start.wait()
            while True:
                try:
                    q = work.get_nowait()
                except queue.Empty:
                    break
                t = time.perf_counter()
                r = client.post("/v1/ask", json={"question": q})
                mine.append((time.perf_counter() - t) * 1000)
                bad += r.status_code != 200
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client_loop, args=(urls[i % len(urls)],), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t0
    return {"latency": latency_summary(lat, seconds), "errors": errors[0], "clients": clients, "servers": len(urls)}


def running_servers(urls: list[str], questions: list[str], clients: int) -> dict:
    """Sequential and concurrent /v1/ask against servers already running, and what each says it serves."""
    import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

    health = []
    for u in urls:
        r = httpx.get(u + "/healthz", timeout=600)  # also loads each server's engine before the clock starts
        if r.status_code != 200:
            raise typer.BadParameter(f"{u}/healthz answered {r.status_code}: {r.text[:200]}")
        health.append(r.json())
    return {
        "urls": urls,
        "health": health,
        "sequential": http_sequential(urls, questions),
        "concurrent": http_concurrent(urls, questions, clients) if clients > 0 else None,
    }


def compare_servers(urls: list[str], baseline: list[str], questions: list[str], clients: int, json_out: Path | None,
                    label: str, baseline_label: str) -> None:
    """The --url mode: the servers given, then the baseline servers, one table."""
    console = Console()
    machine = machine_info()
    groups = [(label, running_servers(urls, questions, clients))]
    if baseline:
        groups.append((baseline_label, running_servers(baseline, questions, clients)))
    machine["load_average_end"] = machine_info()["load_average"]
    t = Table(title=f"/v1/ask over HTTP against running servers ({len(questions)} requests per pass)")
    for col in ("servers", "chunks · generation", "sequential (1 client)", f"{clients} concurrent clients"):
        t.add_column(col, justify="left" if col == "servers" else "right")
    for name, g in groups:
        h = g["health"][0]
        conc = g["concurrent"]
        errors = g["sequential"]["errors"] + (conc["errors"] if conc else 0)
        t.add_row(f"{name} ({len(g['urls'])})" + (f" · {errors} errors" if errors else ""),
                  f"{h.get('chunks')} · {h.get('generation')}", fmt_lat(g["sequential"]["latency"], ("p50", "p95")),
                  fmt_lat(conc["latency"], ("p50", "p95")) if conc else "skipped")
    console.print(t)
    console.print("Every server and client shares this machine's cores: replicas on one machine add no cores, "
                  "only processes (and, on PostgreSQL, a database round trip per request).", highlight=False)
    finish(console, machine, {"machine": machine, "requests_per_pass": len(questions), "clients": clients,
                              "groups": {name: g for name, g in groups}}, json_out)


def copy_kb(src: Path) -> Path:
    """A private copy of the database and the current index generation (the server writes its query log)."""
    dst = Path(tempfile.mkdtemp(prefix="policyqa-bench-kb-"))
    for item in src.iterdir():
        if item.name == "indexes":
            continue
        if item.is_file():
            shutil.copy2(item, dst / item.name)

    source = KnowledgeBase(src)
    gen_dir = source.generation_dir(source.state().generation)
    (dst / "indexes").mkdir()
    shutil.copytree(gen_dir, dst / "indexes" / gen_dir.name)
    return dst


def serve_and_measure(kb_dir: Path, seq_questions: list[str], conc_questions: list[str], clients: int) -> dict:
    private = copy_kb(kb_dir)
    try:
        with ServerProcess(private, log_path=private / "server.log") as srv:
            idle = rss_mb(srv.pid)
            seq = http_sequential(srv.url, seq_questions)
            search = http_sequential(srv.url, seq_questions, route="/v1/search")
            after_seq = rss_mb(srv.pid)
            conc = http_concurrent(srv.url, conc_questions, clients) if clients > 0 and conc_questions else None
            return {
                "sequential": seq,
                "search_sequential": search,
                "concurrent": conc,
                "server_rss_mb": {"after_startup": idle, "after_sequential": after_seq, "end": rss_mb(srv.pid),
                                  "peak": hwm_mb(srv.pid)},
            }
    finally:
        shutil.rmtree(private, ignore_errors=True)


# over 60 lines: a typer command: its options are its signature
def main(
    kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory (default: POLICYQA_KB or the demo KB)."),
    gold: list[Path] = typer.Option(DEFAULT_GOLD, "--gold", help="Gold files whose questions are asked (cycled)."),
    requests: int = typer.Option(200, "--requests", min=1, max=5000, help="Requests per pass (bounded)."),
    concurrency: int = typer.Option(8, "--concurrency", min=0, max=64, help="Concurrent HTTP clients (0: skip)."),
    mode: str = typer.Option("hybrid_faq", "--mode", help="Engine mode in process (the server uses its default)."),
    http: bool = typer.Option(True, "--http/--no-http", help="Also measure over HTTP against a `policyqa serve` subprocess."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON."),
    url: list[str] = typer.Option([], "--url", help="Measure these running servers instead (repeat for replicas behind one database)."),
    baseline_url: list[str] = typer.Option([], "--baseline-url", help="With --url: running servers measured after, in the same run, for comparison."),
    label: str = typer.Option("--url servers", "--label", help="With --url: what the servers are (e.g. 'PostgreSQL replicas')."),
    baseline_label: str = typer.Option("baseline", "--baseline-label", help="What the --baseline-url servers are."),
) -> None:
    """Query latency p50/p95/p99 and req/s (in process; HTTP sequential and concurrent), stages, memory, floors."""
    pool = question_pool(gold)
    seq_questions = _cycle(pool, requests)
    if baseline_url and not url:
        raise typer.BadParameter("--baseline-url needs --url")
    if url:
        compare_servers([u.rstrip("/") for u in url], [u.rstrip("/") for u in baseline_url], seq_questions,
                        concurrency, json_out, label, baseline_label)
        return
    console = Console()
    machine = machine_info()
    kbase = open_kb(kb, seed_demo=True)
    rss_before = rss_mb()
    engine = QAEngine(kbase, get_settings())
    rss_engine = rss_mb()
    counts = kbase.counts()
    model = (kbase.encoder().model_id if kbase.encoder() else None)
    console.print(f"{kbase.directory}: {counts['chunks']} chunks, {counts['documents']} documents · model {model} · "
                  f"{len(pool)} distinct questions, {requests} requests per pass", highlight=False)

    floors = measure_floors(engine, pool[: min(len(pool), requests)])
    inproc = in_process(engine, seq_questions, mode)
    search = in_process_search(engine, seq_questions)
    rss_inproc = rss_mb()
    served = serve_and_measure(kbase.directory, seq_questions, _cycle(pool, requests), concurrency) if http else None
    machine["load_average_end"] = machine_info()["load_average"]

    result = {
        "machine": machine,
        "kb": str(kbase.directory),
        "counts": counts,
        "model": model,
        "mode": mode,
        "requests_per_pass": requests,
        "floors": floors,
        "in_process": inproc,
        "in_process_search": search,
        "judge": engine.state.judge_id or None,
        "in_process_rss_mb": {"before_engine": rss_before, "after_engine_load": rss_engine, "after_run": rss_inproc},
        "http": served,
    }

    t = Table(title=f"query latency, {counts['chunks']} chunks ({requests} requests per pass)")
    t.add_column("what")
    t.add_column("latency", justify="right")
    t.add_column("floor measured in this run", justify="right")
    enc_faiss = floors["encoder_plus_faiss"]
    judge = engine.state.judge_id
    t.add_row(f"in process, sequential ({mode}{', judge ' + judge if judge else ', no judge'})", fmt_lat(inproc["latency"]),
              "encoder+FAISS " + fmt_lat(enc_faiss))
    baseline = search.get("without judge (fused ranking)")
    for name, lat in search.items():
        t.add_row(f"in process search ({name})", fmt_lat(lat),
                  "" if lat is baseline or baseline is None else "without judge " + fmt_lat(baseline, ("p50",)))
    if served:
        seq, conc = served["sequential"], served["concurrent"]
        t.add_row("HTTP, sequential", fmt_lat(seq["latency"]) + (f" · {seq['errors']} errors" if seq["errors"] else ""),
                  "in process " + fmt_lat(inproc["latency"], ("p50",)))
        srch = served["search_sequential"]
        t.add_row("HTTP /v1/search, sequential", fmt_lat(srch["latency"]) + (f" · {srch['errors']} errors" if srch["errors"] else ""),
                  "in process search " + fmt_lat(next(iter(search.values())), ("p50",)))
        if conc:
            t.add_row(f"HTTP, {conc['clients']} concurrent clients",
                      fmt_lat(conc["latency"]) + (f" · {conc['errors']} errors" if conc["errors"] else ""),
                      "HTTP sequential " + fmt_lat(seq["latency"], ("p50",)))
    t.add_row("encoder alone (embed_query)", fmt_lat(floors["encoder_alone"]), "")
    t.add_row(f"FAISS alone ({floors['faiss_index']}, k={FLOOR_K})", fmt_lat(floors["faiss_alone"]), "")
    t.add_row(f"BM25 alone (tokenize + bm25s, k={FLOOR_K})", fmt_lat(floors["bm25_alone"]), "")
    console.print(t)

    st = Table(title="per-stage breakdown, in process (ms; a stage that did not run counts 0)")
    for col in ("stage", "ran", "p50", "p95", "mean", "share of mean total"):
        st.add_column(col, justify="right" if col != "stage" else "left")
    total_mean = inproc["latency"]["mean"] or 0
    names = [s for s in STAGES if s in inproc["stages"]] + [s for s in inproc["stages"] if s not in STAGES]
    for name in names:
        s = inproc["stages"][name]
        st.add_row(name, f"{s['ran']}/{requests}", f"{s['p50']:.2f}", f"{s['p95']:.2f}", f"{s['mean']:.2f}",
                   f"{s['mean'] / total_mean:.0%}" if total_mean else "")
    accounted = sum(inproc["stages"][n]["mean"] for n in names)
    st.add_row("(unaccounted)", "", "", "", f"{total_mean - accounted:.2f}", f"{(total_mean - accounted) / total_mean:.0%}" if total_mean else "")
    console.print(st)

    mem = f"memory: in-process engine +{(rss_engine or 0) - (rss_before or 0):.0f} MB on load (process RSS {rss_inproc or 0:.0f} MB)"
    if served:
        m = served["server_rss_mb"]
        mem += (f"; server RSS {m['after_startup'] or 0:.0f} MB at start, {m['end'] or 0:.0f} MB at end, "
                f"peak {m['peak'] or 0:.0f} MB (target ≤ 2048 MB)")
    console.print(mem, highlight=False)
    console.print("targets (issue 13, 2 cores, with the judge): /v1/ask HTTP p50 ≤ 150 ms, p95 ≤ 250 ms, ≥ 12 req/s with "
                  "8 clients, RSS ≤ 1.8 GB; /v1/search within 10 ms of its p50 without the judge. "
                  "HTTP clients run on the same 2 cores as the server.", highlight=False)
    finish(console, machine, result, json_out)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    typer.run(main)
