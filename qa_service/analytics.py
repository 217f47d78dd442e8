"""Question analytics from the query log: what citizens keep asking, what goes unanswered, what they rate
unhelpful; near-duplicate questions grouped; a group promoted to an FAQ draft. Also citizens' feedback.

    analytics = QuestionAnalytics(kb)
    groups = analytics.run(QuestionFilter(kind="top", days=30, channel="web"))
    groups[0].representative, groups[0].count, groups[0].examples   # "公积金交多少比例", 9, [...]
    draft = analytics.draft_from_group(groups[0], faq_id="FAQ-011")   # FaqEntry to create as a draft

Grouping, in two steps:
1. Identical after normalization: the engine's normalized form (traditional → simplified, full-width →
   half-width, fillers such as 请问/你好 removed, 公积金 → 住房公积金 …), then punctuation, spaces and
   trailing particles (吗/呢/啊) dropped. "请问公积金交多少比例？" and "公积金交多少比例" are one phrasing.
2. Phrasings whose logged query vectors are close: average-linkage agglomerative clustering on cosine
   similarity, cut at GROUP_THRESHOLD (see there for the measurement). Average linkage does not depend on
   the order questions arrive in, and does not chain a long run of neighbours into one topic-wide group.

12345 work orders (qa_service/workorders.py) join as phrasings of channel "ticket": a ticket's ask is embedded
like a chat question, so "失业保险金最长可以领取多长时间" (a ticket) and "失业金领几个月" (the widget) fall in one
group that counts "网站 120，热线工单 340". A group the knowledge base does not answer is offered as an FAQ
draft, or, when tickets keep asking it, flagged 建议主动公开 (依申请公开转主动公开) with those tickets.

Conversations: a follow-up ("那领取期间生病了怎么办？" after "失业保险金最长能领多久？") is not a new frequent
question. It is logged with the query id of the question that opened its topic, and counts with that question's
group (`follow_ups`, `follow_up_examples`, and the `conversations` to read turn by turn); a question with a subject
of its own starts a new topic and counts as an ask of its own.

A group's id is a hash of its representative's normalized text, so an id listed a moment ago still names
the same group when it is promoted; each member phrasing's hash also finds its group (see `find_group`).
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import func, or_, select

from knowledge_base.db import FeedbackRow, QueryLogRow, utcnow
from knowledge_base.query_log import answered_by_department
from knowledge_base.models import FaqEntry, FaqStatus
from knowledge_base.store import KnowledgeBase
from knowledge_base.workorders import WorkOrderStore

from .normalize import QueryNormalizer

# Cosine similarity (e5 query vectors of the normalized questions) above which two phrasings are one
# question, under average linkage. Measured on tests/test_analytics.py's PARAPHRASE_GROUPS: 24 intents,
# 71 phrasings, neighbours deliberately on the same topic (公积金 缴存/贷款/提取, 失业保险金 期限/条件/标准):
#   threshold   B-cubed precision / recall   groups (24 true)   公积金 trio in one group
#     0.920          0.60 / 0.96                  17                  yes
#     0.930          0.74 / 0.93                  22                  yes
#     0.935          0.83 / 0.92                  25                  yes
#     0.940          0.93 / 0.88                  29                  yes
#     0.945          0.93 / 0.88                  29                  yes
#     0.950          0.93 / 0.79                  33                  no
#     0.960          1.00 / 0.62                  46                  no
# (greedy leader/centroid clustering peaked lower, at 0.86 B-cubed F, and depended on arrival order.)
# 0.94 is the middle of the best plateau. What it still merges are same-topic intents the encoder cannot
# tell apart (失业保险金领几个月 vs 申领条件, cosine 0.96); what it splits are terse colloquial forms
# (十一放几天假 vs 国庆节放几天假). Grouping is a triage aid; staff edit the variants when they promote.
GROUP_THRESHOLD = 0.94
# Above this many distinct phrasings the rarest are not clustered but attached to the nearest group (or left
# alone): the linkage matrix is quadratic in memory (2,000 → 16 MB).
MAX_CLUSTERED = 2000
MAX_EXAMPLES = 10
MAX_VARIANTS = 20
KINDS = ("top", "unanswered", "unhelpful")
TICKET_CHANNEL = "ticket"  # 12345 work orders imported from the hotline system
# A group answered less often than this is one the knowledge base cannot answer.
UNANSWERED_RATE = 0.5
# An unanswered group with at least this many tickets is flagged 建议主动公开: citizens ask the hotline for it
# repeatedly, so the information should be published proactively (依申请公开转主动公开), not only written up as an FAQ.
PUBLISH_MIN_TICKETS = 3
# Dates in filters are calendar days in China Standard Time; the log stores naive UTC.
CST = timedelta(hours=8)

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_TRAILING_PARTICLES = re.compile(r"[吗呢啊呀吧哦嘛么]+$")


@dataclass
class QuestionFilter:
    kind: str = "top"  # top | unanswered | unhelpful
    days: int | None = 30  # the last N days (ignored when `since` is given)
    channel: str | None = None  # web | hotline | newmedia | ticket
    department: str | None = None  # 承办单位 of tickets; publisher of the document or 主管部门 of the FAQ that answered
    since: date | None = None  # first day, inclusive (China Standard Time)
    until: date | None = None  # last day, inclusive
    limit: int = 50

    def window(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """[start, end) in naive UTC, as the log stores times."""
        now = now or utcnow()
        start = end = None
        if self.since is not None:
            start = datetime.combine(self.since, datetime.min.time()) - CST
        elif self.days:
            start = now - timedelta(days=self.days)
        if self.until is not None:
            end = datetime.combine(self.until + timedelta(days=1), datetime.min.time()) - CST
        return start, end


@dataclass
class SourceRef:
    """A passage the answers in a group cited, with how strongly (sum of 1/rank over the asks)."""

    doc_id: str | None
    title: str
    section: str
    anchor: str | None
    weight: float


@dataclass
class Phrasing:
    """One normalized question: every ask whose text normalizes to `key`."""

    key: str
    texts: Counter  # original question text -> asks (among the selected asks)
    count: int  # selected asks (all / unanswered / rated unhelpful, by kind)
    asked: int = 0  # all asks in the window
    answered: int = 0  # answered asks in the window
    vector: np.ndarray | None = None
    channels: Counter = field(default_factory=Counter)
    faq_ids: Counter = field(default_factory=Counter)
    last_at: datetime | None = None
    ticket_ids: list[int] = field(default_factory=list)
    follow_ups: Counter = field(default_factory=Counter)  # follow-up as typed -> asks, in conversations it opened
    sessions: dict[str, datetime] = field(default_factory=dict)  # those conversations -> their last follow-up


@dataclass
class QuestionGroup:
    group_id: str
    representative: str
    count: int
    examples: list[str]
    answered_rate: float
    asked: int
    channels: dict[str, int]
    faq_ids: list[str]
    last_asked: datetime | None
    member_ids: list[str]  # hash of each member phrasing's key
    phrasings: list[Phrasing] = field(default_factory=list, repr=False)
    ticket_ids: list[int] = field(default_factory=list)
    follow_ups: int = 0  # follow-up turns in the conversations these asks opened (not asks of their own)
    follow_up_examples: list[str] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)  # session ids of those conversations, latest first

    @property
    def tickets(self) -> int:
        return self.channels.get(TICKET_CHANNEL, 0)

    @property
    def suggestion(self) -> str | None:
        """"publish" (建议主动公开), "faq" (offer an FAQ draft) or None when the knowledge base answers it."""
        if self.answered_rate >= UNANSWERED_RATE:
            return None
        return "publish" if self.tickets >= PUBLISH_MIN_TICKETS else "faq"


def phrasing_key(text: str) -> str:
    """The normalized form two asks must share to count as the same phrasing."""
    key = _PUNCT.sub("", text.lower())
    key = _TRAILING_PARTICLES.sub("", key)
    return key or text.strip().lower()


def group_id_for(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


class QuestionAnalytics:
    def __init__(self, kb: KnowledgeBase, threshold: float = GROUP_THRESHOLD, normalizer: QueryNormalizer | None = None):
        self.kb = kb
        self.threshold = threshold
        self.normalizer = normalizer or QueryNormalizer()

    # ---------------------------------------------------------------- listing
    def run(self, flt: QuestionFilter) -> list[QuestionGroup]:
        """Groups of the selected asks, most frequent first."""
        if flt.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        phrasings = self._phrasings(flt)
        groups = [self._group(members) for members in self._cluster(phrasings)]
        groups.sort(key=lambda g: (-g.count, -(g.last_asked or datetime.min).timestamp(), g.representative))
        return groups[: max(1, flt.limit)] if flt.limit else groups

    def find_group(self, group_id: str, flt: QuestionFilter | None = None) -> QuestionGroup | None:
        """The group with this id under `flt` (what the caller listed); failing that, over the whole log,
        the group that holds the phrasing the id was made from."""
        attempts = [flt] if flt is not None else []
        attempts.append(QuestionFilter(kind="top", days=None, limit=0))
        for attempt in attempts:
            groups = self.run(QuestionFilter(**{**attempt.__dict__, "limit": 0}))
            for g in groups:
                if g.group_id == group_id:
                    return g
            for g in groups:
                if group_id in g.member_ids:
                    return g
        return None

    # ---------------------------------------------------------------- promote
    def draft_from_group(self, group: QuestionGroup, faq_id: str, max_sources: int = 3, faq_lookup=None) -> FaqEntry:
        """An FAQ draft: the representative as 问题, the other phrasings as 相似问法, the passages the answers
        cited most as sources (or, for asks an FAQ entry answered, that entry's sources, via `faq_lookup`).
        The answer is left for the editor to write from those sources."""
        variants: list[str] = []
        for p in sorted(group.phrasings, key=lambda p: -p.count):
            for text, _ in p.texts.most_common():
                t = text.strip()
                if t and t != group.representative and t not in variants:
                    variants.append(t)
        sources = self.best_sources(group)[:max_sources]
        titles = list(dict.fromkeys(s.title for s in sources if s.title))
        articles = list(dict.fromkeys(_article_of(s.section) for s in sources if s.section))
        if not titles and faq_lookup is not None and group.faq_ids:
            answered_by = faq_lookup(group.faq_ids[0])
            if answered_by is not None:
                titles, articles = list(answered_by.source_titles), list(answered_by.source_articles)
        return FaqEntry(
            faq_id=faq_id,
            question=group.representative,
            answer="",
            variants=variants[:MAX_VARIANTS],
            source_titles=titles,
            source_articles=articles,
            status=FaqStatus.DRAFT,
        )

    def best_sources(self, group: QuestionGroup) -> list[SourceRef]:
        """Cited passages over every ask of the group's phrasings, strongest first (weight = Σ 1/rank)."""
        counts = Counter()
        for p in group.phrasings:
            counts.update(p.texts)
        texts = [t for t, _ in counts.most_common(500)]  # bounded: one SQL IN list
        refs: dict[tuple[str, str], SourceRef] = {}
        with self.kb.session() as s:
            rows = s.execute(
                select(QueryLogRow.citations).where(QueryLogRow.question.in_(texts), QueryLogRow.answered.is_(True))
            ).all()
        for (citations,) in rows:
            for rank, c in enumerate(citations or [], start=1):
                if not isinstance(c, dict) or not c.get("doc_id"):
                    continue  # an FAQ citation (no document): its sources are the FAQ entry's
                title = str(c.get("title") or "")
                section = str(c.get("section") or "")
                if not title:
                    continue
                ref = refs.setdefault((title, section), SourceRef(c.get("doc_id"), title, section, c.get("anchor"), 0.0))
                ref.weight += 1.0 / rank
        return sorted(refs.values(), key=lambda r: -r.weight)

    # ---------------------------------------------------------------- internals
    # over 60 lines: one SQL query, built for each filter kind
    def _phrasings(self, flt: QuestionFilter) -> list[Phrasing]:
        """The window's asks, counted per phrasing in SQL (one row per question text, channel, outcome and FAQ),
        then one logged vector per phrasing."""
        start, end = flt.window()
        q = QueryLogRow

        def windowed(stmt):
            if start is not None:
                stmt = stmt.where(q.at >= start)
            if end is not None:
                stmt = stmt.where(q.at < end)
            if flt.channel:
                stmt = stmt.where(q.channel == flt.channel)
            if flt.department:
                stmt = stmt.where(answered_by_department(flt.department))
            return stmt

        def counted(extra_where=None, join_feedback=False):
            stmt = select(
                q.question, func.max(q.normalized), q.channel, q.answered, q.faq_id,
                func.count(), func.max(q.at), func.max(q.query_id),
            )
            if join_feedback:
                stmt = stmt.join(FeedbackRow, FeedbackRow.query_id == q.query_id).where(FeedbackRow.helpful.is_(False))
            # A question content safety refused is counted on its own (by category), never grouped or promoted.
            stmt = stmt.where(q.blocked_category.is_(None))
            # A follow-up is not a new question: it counts with the topic its conversation opened (see below).
            stmt = windowed(stmt).where(or_(q.follow_up.is_(None), q.follow_up.is_(False)))
            if extra_where is not None:
                stmt = stmt.where(extra_where)
            return stmt.group_by(q.question, q.channel, q.answered, q.faq_id)

        by_key: dict[str, Phrasing] = {}
        key_of_text: dict[str, str] = {}

        def phrasing(question: str, normalized: str | None) -> Phrasing:
            key = key_of_text.get(question)
            if key is None:
                key = key_of_text[question] = phrasing_key(normalized or self.normalizer.run(question).text)
            p = by_key.get(key)
            if p is None:
                p = by_key[key] = Phrasing(key=key, texts=Counter(), count=0)
            return p

        chats = flt.channel != TICKET_CHANNEL
        with self.kb.session() as s:
            for question, normalized, _channel, answered, _faq, n, _at, _qid in (s.execute(counted()) if chats else ()):
                p = phrasing(question, normalized)
                p.asked += n
                p.answered += n if answered else 0
            if flt.kind == "unhelpful":
                selected = s.execute(counted(join_feedback=True))
            elif flt.kind == "unanswered":
                selected = s.execute(counted(q.answered.is_(False)))
            else:
                selected = s.execute(counted())
            sample: dict[str, str] = {}  # phrasing key -> a query_id of its selected asks
            for question, normalized, channel, _answered, faq_id, n, at, qid in (selected if chats else ()):
                p = phrasing(question, normalized)
                p.count += n
                p.texts[question] += n
                p.channels[channel] += n
                if faq_id:
                    p.faq_ids[faq_id] += n
                if p.last_at is None or at > p.last_at:
                    p.last_at = at
                sample.setdefault(p.key, qid)
            # One logged vector per phrasing: every ask of it was embedded from the same normalized text.
            want = {sample[p.key]: p for p in by_key.values() if p.count > 0 and p.key in sample}
            ids = list(want)
            for i in range(0, len(ids), 500):
                for qid, emb in s.execute(select(q.query_id, q.embedding).where(q.query_id.in_(ids[i : i + 500]))):
                    if emb:
                        v = np.frombuffer(emb, dtype=np.float32)
                        length = float(np.linalg.norm(v))
                        want[qid].vector = v / length if length > 0 else None
            if chats:
                self._attach_follow_ups(s, windowed, by_key, key_of_text)
        if flt.channel in (None, TICKET_CHANNEL) and flt.kind != "unhelpful":
            for t in WorkOrderStore(self.kb).window(start, end, flt.department):
                p = phrasing(t.question, t.normalized)
                p.asked += 1
                p.answered += 1 if t.kb_answered else 0
                if flt.kind == "unanswered" and t.kb_answered:
                    continue
                p.count += 1
                p.texts[t.question] += 1
                p.channels[TICKET_CHANNEL] += 1
                p.ticket_ids.append(t.id)
                if p.last_at is None or t.received_at > p.last_at:
                    p.last_at = t.received_at
                if p.vector is None and t.vector is not None:
                    p.vector = _unit(np.asarray(t.vector, dtype=np.float32))
        return [p for p in by_key.values() if p.count > 0]

    def _attach_follow_ups(self, s, windowed, by_key: dict[str, Phrasing], key_of_text: dict[str, str]) -> None:
        """The window's follow-ups, each with the phrasing of the question that opened its conversation's topic
        (when that question is among the selected asks; a stateless client's follow-ups name no opening)."""
        q = QueryLogRow
        rows = s.execute(windowed(select(q.followup_of, q.asked, q.question, q.session_id, q.at))
                         .where(q.follow_up.is_(True), q.followup_of.is_not(None))).all()
        opening_ids = list({r[0] for r in rows})
        opening: dict[str, tuple[str, str]] = {}
        for i in range(0, len(opening_ids), 500):
            for qid, question, normalized in s.execute(
                    select(q.query_id, q.question, q.normalized).where(q.query_id.in_(opening_ids[i : i + 500]))):
                opening[qid] = (question, normalized)
        for followup_of, asked, question, session_id, at in rows:
            if followup_of not in opening:
                continue
            text, normalized = opening[followup_of]
            key = key_of_text.get(text) or phrasing_key(normalized or self.normalizer.run(text).text)
            p = by_key.get(key)
            if p is None or p.count == 0:
                continue
            p.follow_ups[asked or question] += 1
            if session_id and (session_id not in p.sessions or at > p.sessions[session_id]):
                p.sessions[session_id] = at

    def _cluster(self, phrasings: list[Phrasing]) -> list[list[Phrasing]]:
        """Average-linkage clusters of phrasings with vectors; phrasings without a vector stand alone."""
        with_vec = [p for p in phrasings if p.vector is not None]
        dims = Counter(len(p.vector) for p in with_vec)
        if dims:  # vectors of another encoder (a rebuilt KB) cannot be compared with these
            dim = dims.most_common(1)[0][0]
            with_vec = [p for p in with_vec if len(p.vector) == dim]
        ids_with = {id(p) for p in with_vec}
        alone = [[p] for p in phrasings if id(p) not in ids_with]
        if len(with_vec) < 2:
            return alone + [[p] for p in with_vec]
        with_vec.sort(key=lambda p: (-p.count, p.key))
        core, rest = with_vec[:MAX_CLUSTERED], with_vec[MAX_CLUSTERED:]
        labels = average_linkage_labels(np.vstack([p.vector for p in core]), self.threshold)
        clusters: dict[int, list[Phrasing]] = defaultdict(list)
        for p, label in zip(core, labels):
            clusters[int(label)].append(p)
        if rest:
            keys = list(clusters)
            centroids = np.vstack([_unit(np.mean([p.vector for p in clusters[k]], axis=0)) for k in keys])
            for p in rest:
                sims = centroids @ p.vector
                best = int(np.argmax(sims))
                if sims[best] >= self.threshold:
                    clusters[keys[best]].append(p)
                else:
                    alone.append([p])
        return list(clusters.values()) + alone

    @staticmethod
    def _group(members: list[Phrasing]) -> QuestionGroup:
        texts: Counter = Counter()
        channels: Counter = Counter()
        faq_ids: Counter = Counter()
        ticket_ids: list[int] = []
        follow_ups: Counter = Counter()
        sessions: dict[str, datetime] = {}
        for p in members:
            follow_ups.update(p.follow_ups)
            for sid, at in p.sessions.items():
                sessions[sid] = max(at, sessions.get(sid, at))
            texts.update(p.texts)
            channels.update(p.channels)
            faq_ids.update(p.faq_ids)
            ticket_ids.extend(p.ticket_ids)
        # The representative: the wording asked most; ties go to the shorter, then the earlier in code order.
        representative = min(texts, key=lambda t: (-texts[t], len(t), t))
        rep_key = next(p.key for p in members if representative in p.texts)
        asked = sum(p.asked for p in members)
        answered = sum(p.answered for p in members)
        last = [p.last_at for p in members if p.last_at is not None]
        return QuestionGroup(
            group_id=group_id_for(rep_key),
            representative=representative,
            count=sum(p.count for p in members),
            examples=[t for t, _ in sorted(texts.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))][:MAX_EXAMPLES],
            answered_rate=round(answered / asked, 3) if asked else 0.0,
            asked=asked,
            channels=dict(channels.most_common()),
            faq_ids=[f for f, _ in faq_ids.most_common()],
            last_asked=max(last) if last else None,
            member_ids=[group_id_for(p.key) for p in members],
            phrasings=members,
            ticket_ids=ticket_ids,
            follow_ups=sum(follow_ups.values()),
            follow_up_examples=[t for t, _ in sorted(follow_ups.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_EXAMPLES],
            conversations=sorted(sessions, key=lambda sid: sessions[sid], reverse=True)[:MAX_EXAMPLES],
        )


def average_linkage_labels(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels of unit vectors: average linkage on cosine distance, cut at 1 - threshold."""
    from scipy.cluster.hierarchy import fcluster, linkage  # lazy: scipy.cluster costs 0.16-0.2 s at start-up, only clustering needs it

    n = len(vectors)
    if n == 1:
        return np.ones(1, dtype=int)
    unit = vectors.astype(np.float64)
    # Condensed cosine distances from one matrix product (several times faster than pdist's cosine).
    distances = np.clip(1.0 - (unit @ unit.T)[np.triu_indices(n, 1)], 0.0, 2.0)
    return fcluster(linkage(distances, method="average"), t=1.0 - threshold, criterion="distance")


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _article_of(section: str) -> str:
    """The last step of a section path: "第四章 失业保险待遇 > 第十七条" → "第十七条"."""
    return section.split(">")[-1].strip() if section else ""


# ------------------------------------------------------------------------------------------ feedback

MAX_COMMENT = 1000


class FeedbackError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class FeedbackService:
    """Citizens' 有用/没用 on an answer. One rating per answer: a second one replaces the first."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def record(self, query_id: str, helpful: bool, comment: str | None = None) -> None:
        comment = (comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT:
            raise FeedbackError(f"留言不能超过{MAX_COMMENT}字 / the comment is longer than {MAX_COMMENT} characters", 422)
        with self.kb.session() as s:
            if s.get(QueryLogRow, query_id) is None:
                raise FeedbackError(f"未找到该问答记录 / unknown query_id {query_id!r}", 404)
            row = s.scalar(select(FeedbackRow).where(FeedbackRow.query_id == query_id).order_by(FeedbackRow.id.desc()).limit(1))
            if row is None:
                s.add(FeedbackRow(query_id=query_id, helpful=bool(helpful), comment=comment, at=utcnow()))
            else:
                row.helpful, row.comment, row.at = bool(helpful), comment, utcnow()
            s.commit()
