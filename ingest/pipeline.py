"""The ingest pipeline: files in, a new knowledge-base generation out.

    report = IngestPipeline(KnowledgeBase.open(Path("kb"))).run([Path("../shared/corpus")])
    print(report.counts())   # {"added": 1716, "new_version": 2, "unchanged": 0, "failed": 0}
    sys.exit(1 if report.failed else 0)

Stages: discover → hash (unchanged files stop here) → parse (load, clean, metadata, structure)
→ chunk → embed → tokenize → commit (one transaction + atomic index switch).

A shard (`run(paths, shard=ShardRun("corpus", ShardSpec(2, 4)))`) takes the files of one directory whose relative path
hashes to it and stages what it embeds every `stage_chunks` chunks instead of committing (knowledge_base/shards.py):
the serving generation moves only at `ShardStore.publish`, and a re-run skips what is stored or staged already.

A new document or FAQ entry whose text contains a word on the blocked-word list (knowledge_base/safety.py) is
ingested as it is and named in `report.content_warnings`, for staff to look at: an official text is never changed.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from knowledge_base.encoder import get_embedder, resolve_backend
from knowledge_base.faqs import FaqService
from knowledge_base.models import Chunk, FaqEntry, ParsedDocument
from knowledge_base.safety import Blocklist, BlocklistService, ContentWarning
from knowledge_base.settings import get_settings
from knowledge_base.shards import ShardRun, ShardStore
from knowledge_base.store import EncoderIdentity, KnowledgeBase, NewVersion, doc_id_for
from knowledge_base.text import tokenize
from knowledge_base.versions import normalize_title

from .chunking import Chunker
from .errors import IngestError
from .faq_sheet import read_faq_sheet
from .loaders import SUPPORTED_SUFFIXES
from .parse import parse_document

FAQ_SUFFIXES = {".csv", ".xlsx"}
SIDECAR_SUFFIXES = (".meta.json", ".meta.yaml", ".meta.yml")


@dataclass
class FileOutcome:
    path: Path
    status: str  # added | new_version | unchanged | failed | faq
    doc_id: str | None = None
    chunks: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=lambda: Counter())
    seconds: float = 0.0
    chunks_embedded: int = 0
    faq_entries: list[FaqEntry] = field(default_factory=list)
    faq_errors: list[str] = field(default_factory=list)
    generation: int | None = None
    staged: int = 0  # document versions a shard staged for publish
    content_warnings: list[ContentWarning] = field(default_factory=list)  # new texts containing a blocked word

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict[str, int]:
        c = Counter(o.status for o in self.outcomes)
        return {k: c.get(k, 0) for k in ("added", "new_version", "unchanged", "failed", "faq")}


@dataclass(frozen=True)
class ParsedFile:
    """A new or changed file, parsed."""

    path: Path
    digest: str  # content_hash: the file and its sidecars
    document: ParsedDocument


@dataclass(frozen=True)
class PlannedVersion:
    """A parsed file with its doc_id and chunks, waiting for vectors."""

    path: Path
    digest: str
    document: ParsedDocument
    doc_id: str
    chunks: list[Chunk]


def discover(paths: list[Path]) -> tuple[list[Path], list[FileOutcome]]:
    """Expand directories; unknown suffixes are reported as failed (named, not silently skipped)."""
    files: list[Path] = []
    problems: list[FileOutcome] = []
    for p in paths:
        if not p.exists():
            problems.append(FileOutcome(p, "failed", error=f"{p}: no such file or directory"))
            continue
        candidates = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in candidates:
            name = f.name.lower()
            if name.endswith(SIDECAR_SUFFIXES) or name.startswith("."):
                continue
            suffix = f.suffix.lower()
            if suffix in SUPPORTED_SUFFIXES or suffix in FAQ_SUFFIXES:
                files.append(f)
            elif not p.is_dir():
                problems.append(FileOutcome(f, "failed", error=f"{f}: unsupported file type {suffix or '(none)'}"))
    return files, problems


def content_hash(path: Path) -> str:
    """Hash of the file and its sidecars: a changed sidecar is a changed document."""
    h = hashlib.sha256(path.read_bytes())
    for suffix in SIDECAR_SUFFIXES:
        for side in (path.with_name(path.name + suffix), path.with_name(path.stem + suffix)):
            if side.exists():
                h.update(side.read_bytes())
    return h.hexdigest()


class IngestPipeline:
    def __init__(
        self,
        kb: KnowledgeBase,
        chunker: Chunker | None = None,
        embedder_factory: Callable[[], object] | None = None,
        batch_size: int = 32,
        max_file_bytes: int | None = None,
        encoder: tuple[str, str] | None = None,
        stage_chunks: int = 2048,  # a shard commits what it embedded this often: ~1-2 min of a 2-core CPU's work
    ):
        self.kb = kb
        self.chunker = chunker or Chunker()
        self._embedder_factory = embedder_factory
        self.encoder = encoder  # (model spec, backend) to embed with, e.g. another knowledge base's
        self.batch_size = batch_size
        self.max_file_bytes = max_file_bytes if max_file_bytes is not None else int(get_settings().max_file_mb * 1024 * 1024)
        self.stage_chunks = stage_chunks

    def encoder_choice(self) -> tuple[str, str]:
        """(model spec, backend): the one the knowledge base was built with, else the settings' choice,
        so new chunks always stay comparable with the stored ones."""
        if self.encoder is not None:
            return self.encoder
        known = self.kb.encoder()
        if known is not None and known.spec:
            return known.spec, known.backend

        settings = get_settings()
        return settings.embedding_model, resolve_backend(settings.embedding_backend)

    def _embedder(self):
        if self._embedder_factory is not None:
            return self._embedder_factory()

        spec, backend = self.encoder_choice()
        return get_embedder(self.kb.encoder_source(spec), backend)

    def run(
        self,
        paths: list[Path],
        on_file: Callable[[FileOutcome], None] | None = None,
        on_embedded: Callable[[int], None] | None = None,
        on_plan: Callable[[int, int], None] | None = None,
        shard: ShardRun | None = None,
    ) -> IngestReport:
        """Ingest files; failures are recorded per file and never stop the batch. With `shard`, `paths` is one
        directory, and this shard's files are staged for `ShardStore.publish` (module docstring)."""
        t_start = time.perf_counter()
        report = IngestReport()

        def emit(outcome: FileOutcome) -> None:
            report.outcomes.append(outcome)
            if on_file:
                on_file(outcome)

        files, problems = discover([Path(p) for p in paths])
        for p in problems:
            emit(p)
        if shard is not None:
            files = self._start_shard(shard, paths, files)
        try:
            parsed = self._parse_changed(files, report, emit, staged=shard is not None)
            self._screen(parsed, report)
            planned = self._plan(parsed, report.stage_seconds)
            if on_plan:
                on_plan(len(planned), sum(len(p.chunks) for p in planned))
            if shard is None:
                self._commit(planned, report, emit, on_embedded)
            else:
                self._stage(planned, report, emit, on_embedded, shard, root=Path(paths[0]))
        except BaseException as e:  # an encoder error, Ctrl-C: the shard's record says so (a SIGKILL leaves "running")
            if shard is not None:
                ShardStore(self.kb).finish(shard, [f"{type(e).__name__}: {e}"] + [o.error or "" for o in report.failed])
            raise
        if shard is not None:
            ShardStore(self.kb).finish(shard, [o.error or str(o.path) for o in report.failed])
        if report.faq_entries:
            FaqService(self.kb).import_entries(report.faq_entries, actor="ingest")
        report.seconds = time.perf_counter() - t_start
        return report

    # ------------------------------------------------------------------ stages of run()
    def _start_shard(self, shard: ShardRun, paths: list[Path], files: list[Path]) -> list[Path]:
        """This shard's share of `files` (by a hash of the path relative to the one directory), recorded as running."""
        if len(paths) != 1 or not Path(paths[0]).is_dir():
            raise ValueError(f"a shard ingests one directory, got {', '.join(map(str, paths))}")
        root = Path(paths[0])
        mine = [f for f in files if shard.spec.owns(f.relative_to(root).as_posix())]
        ShardStore(self.kb).start(shard, files=len(mine))
        return mine

    def _commit(self, planned: list[PlannedVersion], report: IngestReport, emit: Callable[[FileOutcome], None],
                on_embedded: Callable[[int], None] | None) -> None:
        """Embed every planned version, store them and switch the index generation, in one transaction."""
        vectors, encoder = self._embed(planned, report, on_embedded)
        new_versions, outcomes = self._versions(planned, vectors, report.stage_seconds)
        if new_versions:
            t0 = time.perf_counter()
            report.generation = self.kb.commit_ingest(new_versions, encoder=encoder)
            report.stage_seconds["index"] += time.perf_counter() - t0
        for o in outcomes:
            emit(o)

    def _stage(self, planned: list[PlannedVersion], report: IngestReport, emit: Callable[[FileOutcome], None],
               on_embedded: Callable[[int], None] | None, shard: ShardRun, root: Path) -> None:
        """Embed and stage the planned versions about `stage_chunks` chunks at a time (each batch its own commit)."""
        store = ShardStore(self.kb)
        batch: list[PlannedVersion] = []
        batch_chunks = 0
        for i, p in enumerate(planned):
            batch.append(p)
            batch_chunks += len(p.chunks)
            if i + 1 < len(planned) and batch_chunks < self.stage_chunks:
                continue
            vectors, encoder = self._embed(batch, report, on_embedded)
            new_versions, outcomes = self._versions(batch, vectors, report.stage_seconds)
            t0 = time.perf_counter()
            rel_paths = [b.path.relative_to(root).as_posix() for b in batch]
            store.stage(shard, list(zip(rel_paths, new_versions)), encoder)
            report.stage_seconds["stage"] += time.perf_counter() - t0
            report.staged += len(new_versions)
            for o in outcomes:
                emit(o)
            batch, batch_chunks = [], 0

    def _parse_changed(self, files: list[Path], report: IngestReport, emit: Callable[[FileOutcome], None],
                       staged: bool = False) -> list[ParsedFile]:
        """Hash every file; parse the new and changed ones (FAQ sheets are read aside, unchanged files reported).
        `staged`: what a shard staged already counts as stored."""
        stage = report.stage_seconds
        known = self.kb.known_hashes()
        if staged:
            known = ShardStore(self.kb).staged_hashes() | known
        pending: list[ParsedFile] = []
        seen_hashes: set[str] = set()
        for f in files:
            if f.suffix.lower() in FAQ_SUFFIXES:
                self._read_faq(f, report, emit)
                continue
            too_large = self._too_large(f)
            if too_large:
                emit(FileOutcome(f, "failed", error=too_large))
                continue
            t0 = time.perf_counter()
            try:
                digest = content_hash(f)
            except OSError as e:
                emit(FileOutcome(f, "failed", error=f"{f}: cannot read ({e.strerror or e})"))
                continue
            stage["hash"] += time.perf_counter() - t0
            if digest in known or digest in seen_hashes:
                emit(FileOutcome(f, "unchanged", doc_id=known.get(digest)))
                continue
            t0 = time.perf_counter()
            try:
                document = parse_document(f)
            except IngestError as e:
                emit(FileOutcome(f, "failed", error=str(e)))
                continue
            except Exception as e:  # a parser bug must not lose the batch; name the file
                emit(FileOutcome(f, "failed", error=f"{f}: {type(e).__name__}: {e}"))
                continue
            finally:
                stage["parse"] += time.perf_counter() - t0
            document.meta.source_path = str(f.resolve())
            seen_hashes.add(digest)
            pending.append(ParsedFile(f, digest, document))
        return pending

    def _screen(self, parsed: list[ParsedFile], report: IngestReport) -> None:
        """Name the new documents and FAQ entries that contain a blocked word (reported, not changed)."""
        if not parsed and not report.faq_entries:
            return
        blocklist = Blocklist(BlocklistService(self.kb).list())
        for p in parsed:
            report.content_warnings += blocklist.warnings(p.document.meta.title or p.path.name, p.document.text)
        for e in report.faq_entries:
            report.content_warnings += blocklist.warnings(e.faq_id, e.question, e.answer, e.short_answer)

    def _too_large(self, f: Path) -> str | None:
        """Why `f` is refused for its size, or None."""
        try:
            size = f.stat().st_size
        except OSError:
            return None  # content_hash reports the unreadable file
        if size <= self.max_file_bytes:
            return None
        limit = self.max_file_bytes / (1024 * 1024)
        return (f"{f.name}: 文件过大 / the file is {size / 1024 / 1024:.1f} MB, more than the {limit:g} MB limit "
                f"(POLICYQA_MAX_FILE_MB); split it or raise the limit")

    def _plan(self, parsed: list[ParsedFile], stage: Counter) -> list[PlannedVersion]:
        t0 = time.perf_counter()
        planned = []
        for p in parsed:
            doc_id = doc_id_for(normalize_title(p.document.meta.title), p.digest)
            planned.append(PlannedVersion(p.path, p.digest, p.document, doc_id, self.chunker.run(p.document, doc_id)))
        stage["chunk"] += time.perf_counter() - t0
        return planned

    def _embed(self, planned: list[PlannedVersion], report: IngestReport,
               on_embedded: Callable[[int], None] | None) -> tuple[np.ndarray, EncoderIdentity | None]:
        """One matrix of passage vectors, in the planned chunks' order (empty when nothing is new)."""
        texts = [c.embed_text for p in planned for c in p.chunks]
        if not texts:
            return np.zeros((0, 0), np.float32), None
        stage = report.stage_seconds
        t0 = time.perf_counter()
        embedder = self._embedder()
        stage["load_model"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        vectors = embedder.embed_passages(texts, batch_size=self.batch_size, progress=on_embedded)
        stage["embed"] += time.perf_counter() - t0
        report.chunks_embedded += len(texts)
        spec, backend = self.encoder_choice()
        return vectors, EncoderIdentity(embedder.model_id, spec, backend, embedder.dim)

    def _versions(self, planned: list[PlannedVersion], vectors: np.ndarray,
                  stage: Counter) -> tuple[list[NewVersion], list[FileOutcome]]:
        """Tokenize each planned version and pair it with its rows of `vectors`."""
        t0 = time.perf_counter()
        new_versions, outcomes = [], []
        offset = 0
        for p in planned:
            n = len(p.chunks)
            toks = [tokenize(c.embed_text) for c in p.chunks]
            new_versions.append(NewVersion(p.document, p.digest, p.chunks, toks, vectors[offset : offset + n]))
            offset += n
            meta = p.document.meta
            is_version = bool(self.kb.docs_at_path(meta.source_path)) or self.kb.work_exists(meta.title)
            outcomes.append(FileOutcome(p.path, "new_version" if is_version else "added", doc_id=p.doc_id, chunks=n))
        stage["tokenize"] += time.perf_counter() - t0
        return new_versions, outcomes

    def _read_faq(self, f: Path, report: IngestReport, emit) -> None:
        try:
            result = read_faq_sheet(f.read_bytes(), f.name)
        except (OSError, IngestError) as e:
            emit(FileOutcome(f, "failed", error=str(e) if isinstance(e, IngestError) else f"{f}: {e}"))
            return
        report.faq_entries.extend(result.entries)
        report.faq_errors.extend(f"{f.name} row {e.row}: {e.error}" for e in result.errors)
        emit(FileOutcome(f, "faq" if not result.errors else "failed", chunks=len(result.entries),
                         error="; ".join(f"row {e.row}: {e.error}" for e in result.errors) or None))
