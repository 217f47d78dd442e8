"""The staff dashboard's figures: questions per day by channel (chat channels and 12345 tickets), answer and
refusal rate per day, feedback per day, the top topics and the top unanswered groups, for one filter.

    board = DashboardService(kb).run(QuestionFilter(days=30, channel=None, department=None))
    board.days[:2], board.asks["web"][:2], board.answer_rate[:2]     # ["2026-11-02", …], [12, 9], [0.83, 0.78]

Days are calendar days in China Standard Time; every series has one value per day of the window, so the
charts and their tables line up.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from knowledge_base.activity import Activity
from knowledge_base.db import utcnow
from knowledge_base.store import KnowledgeBase

from .analytics import CST, TICKET_CHANNEL, QuestionAnalytics, QuestionFilter, QuestionGroup

CHANNELS = ("web", "hotline", "newmedia", TICKET_CHANNEL)
CHANNEL_LABELS = {"web": "网站", "hotline": "热线坐席", "newmedia": "新媒体", TICKET_CHANNEL: "12345工单"}
MAX_DAYS = 366
TOP_GROUPS = 10


@dataclass
class Dashboard:
    since: date
    until: date
    days: list[str]
    asks: dict[str, list[int]]  # channel -> asks per day
    answer_rate: list[float | None]  # answered / asked per day (chat and tickets), None on a day without asks
    refusal_rate: list[float | None]
    helpful: list[int]
    unhelpful: list[int]
    totals: dict[str, float]
    blocked: dict[str, int] = field(default_factory=dict)  # content safety: refused questions by category
    top: list[QuestionGroup] = field(default_factory=list)
    unanswered: list[QuestionGroup] = field(default_factory=list)


def _local_day(at: datetime) -> date:
    return (at + CST).date()


def resolve_dates(flt: QuestionFilter, now: datetime | None = None) -> tuple[date, date]:
    """The first and last calendar day (CST) a filter covers."""
    now = now or utcnow()
    today = _local_day(now)
    until = flt.until or today
    since = flt.since or (until - timedelta(days=max(1, flt.days or 30) - 1))
    if (until - since).days + 1 > MAX_DAYS:
        raise ValueError(f"时间范围最多 {MAX_DAYS} 天 / at most {MAX_DAYS} days")
    return since, until


class DashboardService:
    def __init__(self, kb: KnowledgeBase, analytics: QuestionAnalytics | None = None):
        self.kb = kb
        self.activity = Activity(kb)
        self.analytics = analytics or QuestionAnalytics(kb)

    def run(self, flt: QuestionFilter, groups: int = TOP_GROUPS) -> Dashboard:
        since, until = resolve_dates(flt)
        window = QuestionFilter(kind="top", days=None, channel=flt.channel, department=flt.department,
                                since=since, until=until, limit=groups)
        start, end = window.window()
        days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
        index = {d: i for i, d in enumerate(days)}
        asks = {c: [0] * len(days) for c in CHANNELS}
        answered = [0] * len(days)
        chat = flt.channel != TICKET_CHANNEL
        if chat:
            for at, channel, ok in self.activity.asks(start, end, flt.channel, flt.department):
                i = index.get(_local_day(at))
                if i is not None and channel in asks:
                    asks[channel][i] += 1
                    answered[i] += 1 if ok else 0
        if flt.channel in (None, TICKET_CHANNEL):
            for at, ok in self.activity.tickets(start, end, flt.department):
                i = index.get(_local_day(at))
                if i is not None:
                    asks[TICKET_CHANNEL][i] += 1
                    answered[i] += 1 if ok else 0
        helpful, unhelpful = [0] * len(days), [0] * len(days)
        if chat:
            for at, ok in self.activity.feedback(start, end, flt.channel, flt.department):
                i = index.get(_local_day(at))
                if i is not None:
                    (helpful if ok else unhelpful)[i] += 1
        # Refused for a blocked word: by category, apart from the asks (no department answered them).
        blocked = Counter(category for _at, category in self.activity.blocked(start, end, flt.channel)) \
            if chat and not flt.department else Counter()
        per_day = [sum(asks[c][i] for c in CHANNELS) for i in range(len(days))]
        answer_rate = [round(answered[i] / n, 3) if n else None for i, n in enumerate(per_day)]
        refusal_rate = [round(1 - r, 3) if r is not None else None for r in answer_rate]
        total = sum(per_day)
        by_channel = Counter({c: sum(v) for c, v in asks.items()})
        totals = {
            "asks": total, **{f"asks_{c}": by_channel[c] for c in CHANNELS},
            "answered": sum(answered), "answer_rate": round(sum(answered) / total, 3) if total else 0.0,
            "helpful": sum(helpful), "unhelpful": sum(unhelpful), "blocked": sum(blocked.values()),
        }
        top = self.analytics.run(window)
        unanswered = self.analytics.run(QuestionFilter(**{**window.__dict__, "kind": "unanswered"}))
        return Dashboard(
            since=since, until=until, days=[d.isoformat() for d in days], asks=asks, answer_rate=answer_rate,
            refusal_rate=refusal_rate, helpful=helpful, unhelpful=unhelpful, totals=totals, blocked=dict(blocked.most_common()),
            top=top, unanswered=unanswered,
        )
