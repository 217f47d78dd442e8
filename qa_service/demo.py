"""The bundled demo knowledge base: 5 municipal plans, 35 livelihood regulations, the sample FAQ.

    report = build_demo(KnowledgeBase.open(Path("/tmp/demo-kb")))
    report.counts()   # {"added": 38, "new_version": 2, ...}
    kb = open_kb(None, seed_demo=True)   # the default knowledge base, seeded with the demo on first use
    build_demo_in_child(Path("/tmp/demo-kb"))   # what `policyqa serve` does on first run

`policyqa serve` builds it in a child process (`python -m qa_service.demo DIR`): the build's encoder, batches
and allocator arenas leave with that process, so the server does not keep them (measured in the README); the child
also exports the question encoder's ONNX runtime, so the server never imports torch for it.

The sample FAQ entries are published on seeding (audited as reviewed by `demo-seed`), so a newcomer
sees curated answers at once; a real deployment imports its sheet as drafts and reviews them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ingest.pipeline import IngestPipeline, IngestReport
from ingest.progress import ProgressConfig, ProgressLines
from knowledge_base.faqs import FaqService
from knowledge_base.models import FaqStatus
from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBase

from .engine import load_query_embedder

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_CORPUS = DEMO_DIR / "corpus"
DEMO_FAQ = DEMO_DIR / "faq.csv"
SEED_AUTHOR, SEED_REVIEWER = "demo-import", "demo-seed"


def build_demo(kb: KnowledgeBase, on_file=None, on_plan=None, on_embedded=None) -> IngestReport:
    pipeline = IngestPipeline(kb)
    report = pipeline.run([DEMO_CORPUS, DEMO_FAQ], on_file=on_file, on_plan=on_plan, on_embedded=on_embedded)
    if report.failed:
        raise RuntimeError("demo corpus failed to ingest: " + "; ".join(o.error or "" for o in report.failed))
    faqs = FaqService(kb)
    embedder = pipeline._embedder()
    for entry in faqs.list(FaqStatus.DRAFT):
        faqs.review(entry.faq_id, actor=SEED_REVIEWER, confidentiality_checked=True)
        faqs.publish(entry.faq_id, actor=SEED_REVIEWER, embed=embedder.embed_queries)
    return report


def open_kb(kb: Path | None = None, seed_demo: bool = False, notify: Callable[[str], None] | None = None) -> KnowledgeBase:
    """Open the knowledge base at `kb` (default: POLICYQA_KB, else the default one in the cache); with `seed_demo`, the
    default one is built from the bundled demo corpus on first use, and `notify` hears about it."""
    kbase = KnowledgeBase.open(kb)
    if seed_demo and kb is None and get_settings().kb is None and kbase.state().generation == 0:
        say = notify or (lambda line: print(line, file=sys.stderr))
        say(f"First run: building the demo knowledge base in {kbase.directory} (a few minutes) …")
        build_demo_in_child(kbase.directory)
        say(f"demo knowledge base ready: {kbase.counts()['chunks']} chunks")
    return kbase


def build_demo_in_child(directory: Path) -> None:
    """Build the demo knowledge base in `directory` in a child process that prints progress lines."""
    result = subprocess.run([sys.executable, "-m", "qa_service.demo", str(directory)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"building the demo knowledge base failed (exit {result.returncode}); see the lines above")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m qa_service.demo KB_DIR", file=sys.stderr)
        return 2
    lines = ProgressLines(ProgressConfig(prefix="demo"))
    try:
        report = build_demo(KnowledgeBase.open(Path(argv[1])), on_file=lines.file, on_plan=lines.plan, on_embedded=lines.embedded)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    lines.done(report)
    prepare_question_encoder(KnowledgeBase.open(Path(argv[1])))
    return 0


def prepare_question_encoder(kb: KnowledgeBase) -> None:
    """Load (and so export, on first use: torch and a minute's ONNX export) the encoder the server will ask with, here
    in the build's process rather than in the server, which then only loads the exported file."""
    settings = get_settings()
    encoder = kb.encoder()
    if encoder is not None:
        load_query_embedder(kb.encoder_source(encoder.spec or settings.embedding_model), encoder.backend or settings.embedding_backend, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
