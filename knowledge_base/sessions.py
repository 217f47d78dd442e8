"""Conversation turns in the store: the session memory every server instance shares (issue 10).

    repo = SessionRepository(kb)
    repo.append("visit-42", question="那春节呢？", understood="关于《全国年节及纪念日放假办法》：春节呢？", answer="…")
    repo.recent("visit-42", max_turns=3, max_age_seconds=1800)   # -> [StoredTurn, …], oldest first
    repo.clear("visit-42")

    issuer = SessionIssuer(kb, max_age_seconds=1800)
    sid = issuer.session_for(None)         # a new, unguessable id (the HTTP API returns it)
    issuer.session_for(sid) == sid         # issued and alive: the same conversation
    issuer.session_for("visit-42") != "visit-42"   # never issued (or expired): a new conversation, a new id

SQL lives here, not in the answering service; old turns are pruned when a session is written.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from .db import ConversationSessionRow, ConversationTurnRow, utcnow
from .privacy import mask_personal_info


@dataclass(frozen=True)
class StoredTurn:
    question: str
    understood: str
    answer: str
    at: datetime
    query_id: str | None = None


class SessionRepository:
    def __init__(self, kb):
        self.kb = kb

    def recent(self, session_id: str, *, max_turns: int, max_age_seconds: float) -> list[StoredTurn]:
        """The session's last `max_turns` turns younger than `max_age_seconds`, oldest first."""
        since = utcnow() - timedelta(seconds=max_age_seconds)
        with self.kb.session() as s:
            rows = s.scalars(
                select(ConversationTurnRow)
                .where(ConversationTurnRow.session_id == session_id, ConversationTurnRow.at >= since)
                .order_by(ConversationTurnRow.at.desc(), ConversationTurnRow.id.desc())
                .limit(max_turns)
            ).all()
        return [StoredTurn(r.question, r.understood, r.answer, r.at, r.query_id) for r in reversed(rows)]

    def append(self, session_id: str, *, question: str, understood: str, answer: str, query_id: str | None = None,
               keep_turns: int = 10, max_age_seconds: float = 1800.0) -> None:
        """Add a turn, then drop this session's turns beyond `keep_turns` and every session's expired turns."""
        with self.kb.session() as s:
            # Stored like the query log: personal information (ID-card, phone, bank-card numbers …) masked.
            s.add(ConversationTurnRow(session_id=session_id, question=mask_personal_info(question),
                                      understood=mask_personal_info(understood), answer=mask_personal_info(answer),
                                      query_id=query_id))
            s.flush()
            keep = select(ConversationTurnRow.id).where(ConversationTurnRow.session_id == session_id).order_by(
                ConversationTurnRow.id.desc()).limit(keep_turns)
            s.execute(delete(ConversationTurnRow).where(ConversationTurnRow.session_id == session_id,
                                                        ConversationTurnRow.id.not_in(keep)))
            s.execute(delete(ConversationTurnRow).where(
                ConversationTurnRow.at < utcnow() - timedelta(seconds=max_age_seconds)))
            s.commit()

    def clear(self, session_id: str) -> int:
        with self.kb.session() as s:
            n = s.execute(delete(ConversationTurnRow).where(ConversationTurnRow.session_id == session_id)).rowcount
            s.commit()
        return int(n or 0)


class SessionIssuer:
    """Session ids are the server's to give (issue 23): a client-chosen id would join whoever else used it, so an id
    continues a conversation only when this server (or another on the same store) issued it and it was used within
    `max_age_seconds`. 24 random bytes (32 URL-safe characters) cannot be guessed."""

    TOKEN_BYTES = 24

    def __init__(self, kb, max_age_seconds: float = 1800.0):
        self.kb = kb
        self.max_age = timedelta(seconds=max_age_seconds)

    def session_for(self, client_id: str | None) -> str:
        """`client_id` when it was issued and is alive (its clock restarts), else a newly issued id."""
        if client_id and self._touch(client_id):
            return client_id
        return self.issue()

    def issue(self) -> str:
        session_id = secrets.token_urlsafe(self.TOKEN_BYTES)
        now = utcnow()
        with self.kb.session() as s:
            s.add(ConversationSessionRow(session_id=session_id, issued_at=now, last_seen=now))
            s.execute(delete(ConversationSessionRow).where(ConversationSessionRow.last_seen < now - self.max_age))
            s.commit()
        return session_id

    def _touch(self, session_id: str) -> bool:
        now = utcnow()
        with self.kb.session() as s:
            touched = s.execute(update(ConversationSessionRow).where(
                ConversationSessionRow.session_id == session_id,
                ConversationSessionRow.last_seen >= now - self.max_age).values(last_seen=now)).rowcount
            s.commit()
        return bool(touched)
