"""Staff API keys as stored: a name, a role, a 处室/单位 (or none), the SHA-256 of the token, revoked or not.

    keys = ApiKeyRepository(kb)
    record = keys.add(name="李审核", role="reviewer", key_hash=sha256_hex)
    keys.by_hash(sha256_hex)      # → ApiKeyRecord, or None
    keys.revoke(record.key_id)    # → the revoked record, or None for an unknown id

The rules (roles, token format, hashing) are qa_service/auth.py's; this module only stores and finds.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .db import ApiKeyRow
from .store import KnowledgeBase


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: int
    name: str
    role: str
    created_at: datetime
    revoked: bool
    department: str | None = None


class ApiKeyRepository:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def add(self, name: str, role: str, key_hash: str, department: str | None = None) -> ApiKeyRecord:
        with self.kb.session() as s:
            row = ApiKeyRow(name=name, role=role, key_hash=key_hash, revoked=False, department=department)
            s.add(row)
            s.commit()
            return _record(row)

    def list(self) -> list[ApiKeyRecord]:
        with self.kb.session() as s:
            return [_record(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def get(self, key_id: int) -> ApiKeyRecord | None:
        with self.kb.session() as s:
            row = s.get(ApiKeyRow, key_id)
            return _record(row) if row is not None else None

    def active_named(self, name: str) -> ApiKeyRecord | None:
        """An unrevoked key of this name, if any."""
        with self.kb.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked.is_(False)).limit(1))
            return _record(row) if row is not None else None

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self.kb.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))
            return _record(row) if row is not None else None

    def revoke(self, key_id: int) -> ApiKeyRecord | None:
        with self.kb.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                return None
            row.revoked = True
            s.commit()
            return _record(row)


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.role, row.created_at, bool(row.revoked), row.department)
