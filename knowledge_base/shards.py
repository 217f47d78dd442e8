"""Sharded ingest: several machines embed their share of a corpus into one store; publish serves it all at once.

    shard = ShardRun("corpus", ShardSpec.parse("2/4"))
    shard.spec.owns("national/行政法规/失业保险条例(1999-01-22).md")   # the same answer on every machine
    store = ShardStore(kb)
    store.start(shard, files=412); store.stage(shard, [(rel_path, new_version)], encoder); store.finish(shard, ...)
    ShardStore(kb).publish()   # raises ShardError naming the shards not in, unless force=True

A shard stages what it embedded in `staged_versions` (committed every few thousand chunks, so a killed shard keeps
what it finished); nothing that answers reads that table. `publish` stores every staged version through
`KnowledgeBase.commit_ingest` in path order — the order one process would have ingested them in — and empties the
staging in the same transaction, so the serving generation moves once, to the whole corpus.
"""
from __future__ import annotations

import hashlib
import socket
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import PurePosixPath

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .db import ShardRunRow, StagedVersionRow, utcnow
from .encoder import same_vector_space
from .models import Chunk, Disclosure, DocType, DocumentMeta, ParsedDocument, Section
from .store import EncoderIdentity, KnowledgeBase, NewVersion, doc_id_for
from .versions import normalize_title

RUNNING, DONE, FAILED, PUBLISHED = "running", "done", "failed", "published"
DATE_FIELDS = ("written_date", "published_date", "version_date")
# Staged versions read back per query by publish: bounded memory per round trip, few round trips.
PUBLISH_READ_BATCH = 200


class ShardError(Exception):
    """A shard cannot start, or the staged shards cannot be published; the message says which and why."""


@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` of `count` (1-based): the files whose path hashes to it."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "ShardSpec":
        """'2/4' -> ShardSpec(2, 4); ValueError saying what is expected otherwise."""
        index, sep, count = text.partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()) or not 1 <= int(index) <= int(count):
            raise ValueError(f"--shard {text!r}: expected K/N with 1 ≤ K ≤ N, e.g. 2/4")
        return cls(int(index), int(count))

    def owns(self, rel_path: str) -> bool:
        """Whether the file at `rel_path` (relative to the ingested directory, '/'-separated) is this shard's: a hash
        of the path, stable across machines and Python runs (not hash(), which is salted per process)."""
        digest = hashlib.sha1(rel_path.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class ShardRun:
    run: str  # names one sharded ingest of one corpus; every machine passes the same
    spec: ShardSpec


@dataclass
class RunStatus:
    """One run not yet published: which of its shards are in, and why the others are not."""

    run: str
    shards: int
    done: list[int] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "shard 2/4: …", one line per shard not in


@dataclass
class PublishResult:
    runs: list[RunStatus]
    versions: int  # document versions stored
    duplicates: int  # staged versions skipped: the same content already stored, or staged twice
    generation: int  # the serving generation after publish (unchanged when nothing was stored)


def document_json(doc: ParsedDocument) -> dict:
    meta = asdict(doc.meta)
    for name in DATE_FIELDS:
        meta[name] = meta[name].isoformat() if meta[name] else None
    meta["disclosure"], meta["doc_type"] = Disclosure(doc.meta.disclosure).value, DocType(doc.meta.doc_type).value
    return {"meta": meta, "text": doc.text, "sections": [asdict(s) for s in doc.sections]}


def document_from_json(data: dict) -> ParsedDocument:
    meta = dict(data["meta"])
    for name in DATE_FIELDS:
        meta[name] = date.fromisoformat(meta[name]) if meta[name] else None
    meta["disclosure"], meta["doc_type"] = Disclosure(meta["disclosure"]), DocType(meta["doc_type"])
    return ParsedDocument(DocumentMeta(**meta), data["text"], [Section(**s) for s in data["sections"]])


def staged_row(shard: ShardRun, rel_path: str, nv: NewVersion) -> StagedVersionRow:
    doc_id = nv.chunks[0].doc_id if nv.chunks else doc_id_for(normalize_title(nv.parsed.meta.title), nv.content_hash)
    chunks = [{**asdict(c), "tokens": " ".join(t)} for c, t in zip(nv.chunks, nv.token_lists)]
    return StagedVersionRow(run=shard.run, shard=shard.spec.index, rel_path=rel_path, content_hash=nv.content_hash,
                            doc_id=doc_id, document=document_json(nv.parsed), chunks=chunks,
                            vectors=np.ascontiguousarray(nv.vectors, dtype=np.float32).tobytes())


def version_from_row(row: StagedVersionRow, dim: int) -> NewVersion:
    chunks = [dict(c) for c in row.chunks]
    tokens = [c.pop("tokens").split(" ") for c in chunks]
    vectors = np.frombuffer(row.vectors, dtype=np.float32).reshape(len(chunks), dim)
    return NewVersion(document_from_json(row.document), row.content_hash, [Chunk(**c) for c in chunks], tokens, vectors)


def path_order(rel_path: str) -> tuple[str, ...]:
    """The order `ingest.pipeline.discover` lists a directory in (sorted Paths compare part by part)."""
    return PurePosixPath(rel_path).parts


class ShardStore:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    # ------------------------------------------------------------------ one shard's side
    def start(self, shard: ShardRun, files: int) -> None:
        """Record the shard as running (again): a re-run replaces the record of an earlier attempt."""
        with self.kb.session() as s:
            other = s.scalar(select(ShardRunRow.shards).where(
                ShardRunRow.run == shard.run, ShardRunRow.status != PUBLISHED, ShardRunRow.shards != shard.spec.count))
            if other is not None:
                raise ShardError(f"run {shard.run!r} already has shards of /{other} staged; this shard is "
                                 f"{shard.spec}: give every machine the same N, or another --run")
            key = (shard.run, shard.spec.index)
            row = s.get(ShardRunRow, key) or ShardRunRow(run=shard.run, shard=shard.spec.index)
            row.shards, row.status, row.host, row.files = shard.spec.count, RUNNING, socket.gethostname(), files
            row.staged, row.failed, row.error = 0, 0, None
            row.started_at, row.finished_at = utcnow(), None
            s.add(row)
            s.commit()

    def staged_hashes(self) -> dict[str, str]:
        """content_hash -> doc_id of every staged version, for skipping what a shard already embedded."""
        with self.kb.session() as s:
            return dict(s.execute(select(StagedVersionRow.content_hash, StagedVersionRow.doc_id)).all())

    def stage(self, shard: ShardRun, versions: list[tuple[str, NewVersion]], encoder: EncoderIdentity | None) -> None:
        """Stage (rel_path, version) pairs in one transaction; an earlier staged version of a path is replaced."""
        if not versions:
            return
        with self.kb.session() as s:
            row = s.get(ShardRunRow, (shard.run, shard.spec.index))
            if encoder is not None:
                self.kb.check_encoder(s, encoder)
                row.model_id, row.model_spec, row.model_backend, row.dim = (
                    encoder.model_id, encoder.spec, encoder.backend, encoder.dim)
            s.execute(delete(StagedVersionRow).where(StagedVersionRow.run == shard.run,
                                                     StagedVersionRow.rel_path.in_([p for p, _ in versions])))
            s.add_all(staged_row(shard, rel_path, nv) for rel_path, nv in versions)
            row.staged += len(versions)
            s.commit()

    def finish(self, shard: ShardRun, failures: list[str]) -> None:
        """Record the attempt's end: done, or failed with its first failure (publish then refuses it)."""
        with self.kb.session() as s:
            row = s.get(ShardRunRow, (shard.run, shard.spec.index))
            row.status = FAILED if failures else DONE
            row.failed, row.error = len(failures), (failures[0] if failures else None)
            row.finished_at = utcnow()
            s.commit()

    # ------------------------------------------------------------------ publish
    def pending(self) -> list[RunStatus]:
        """Every run with a shard recorded since its last publish, with the shards that are not in."""
        with self.kb.session() as s:
            rows = list(s.scalars(select(ShardRunRow).where(ShardRunRow.status != PUBLISHED)
                                  .order_by(ShardRunRow.run, ShardRunRow.shard)))
        statuses: dict[str, RunStatus] = {}
        for r in rows:
            st = statuses.setdefault(r.run, RunStatus(r.run, r.shards))
            if r.status == DONE:
                st.done.append(r.shard)
            elif r.status == FAILED:
                st.missing.append(f"shard {r.shard}/{r.shards} failed: {r.failed} file(s) failed, first: {r.error}")
            else:
                st.missing.append(f"shard {r.shard}/{r.shards} has not finished (started {r.started_at:%Y-%m-%d %H:%M} "
                                  f"UTC on {r.host}: still running, or killed)")
        for st in statuses.values():
            recorded = {r.shard for r in rows if r.run == st.run}
            st.missing += [f"shard {k}/{st.shards} has not run" for k in range(1, st.shards + 1) if k not in recorded]
        return list(statuses.values())

    def publish(self, force: bool = False) -> PublishResult:
        """Store every staged version of the pending runs and switch the index generation, in one transaction."""
        runs = self.pending()
        missing = [f"run {st.run!r}: {line}" for st in runs for line in st.missing]
        if missing and not force:
            raise ShardError("not every shard is in (re-run those shards, or publish without them with --force):\n  "
                             + "\n  ".join(missing))
        names = [st.run for st in runs]
        encoder = self._encoder(names)
        versions, duplicates, last_id = self._staged_versions(names, encoder.dim if encoder else 0)

        def empty_staging(s: Session) -> None:  # what was read: a shard still staging (under --force) keeps the rest
            s.execute(delete(StagedVersionRow).where(StagedVersionRow.run.in_(names), StagedVersionRow.id <= last_id))
            s.execute(update(ShardRunRow).where(ShardRunRow.run.in_(names), ShardRunRow.status != PUBLISHED)
                      .values(status=PUBLISHED))

        if versions:
            generation = self.kb.commit_ingest(versions, encoder=encoder, also=empty_staging)
        else:
            with self.kb.session() as s:
                empty_staging(s)
                s.commit()
            generation = self.kb.state().generation
        return PublishResult(runs, len(versions), duplicates, generation)

    def _encoder(self, runs: list[str]) -> EncoderIdentity | None:
        with self.kb.session() as s:
            found = s.execute(select(ShardRunRow.model_id, ShardRunRow.model_spec, ShardRunRow.model_backend,
                                     ShardRunRow.dim).where(ShardRunRow.run.in_(runs),
                                                            ShardRunRow.model_id.is_not(None))).all()
        identities = [EncoderIdentity(*f) for f in found]
        for other in identities[1:]:
            if not same_vector_space(identities[0].model_id, other.model_id):
                raise ShardError(f"the shards were embedded with different models ({identities[0].model_id!r} and "
                                 f"{other.model_id!r}): re-run the odd ones with the same POLICYQA_EMBEDDING_MODEL")
        return identities[0] if identities else None

    def _staged_versions(self, runs: list[str], dim: int) -> tuple[list[NewVersion], int, int]:
        """(versions, duplicates skipped, the last staged row id read): the staged versions in path order, without
        the content already stored or staged twice (the first kept, as one process keeps the first file of a content
        it meets twice)."""
        with self.kb.session() as s:
            index = s.execute(select(StagedVersionRow.id, StagedVersionRow.rel_path, StagedVersionRow.content_hash)
                              .where(StagedVersionRow.run.in_(runs))).all()
        index.sort(key=lambda r: (path_order(r.rel_path), r.id))
        seen = set(self.kb.known_hashes())
        wanted = []
        for row_id, _, content_hash in index:
            if content_hash not in seen:
                seen.add(content_hash)
                wanted.append(row_id)
        versions: list[NewVersion] = []
        with self.kb.session() as s:
            for start in range(0, len(wanted), PUBLISH_READ_BATCH):
                ids = wanted[start: start + PUBLISH_READ_BATCH]
                rows = {r.id: r for r in s.scalars(select(StagedVersionRow).where(StagedVersionRow.id.in_(ids)))}
                versions += [version_from_row(rows[i], dim) for i in ids]
                s.expunge_all()
        return versions, len(index) - len(wanted), max((r.id for r in index), default=0)
