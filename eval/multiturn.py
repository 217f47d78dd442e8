"""Multi-turn gold conversations (issue 10): each conversation is asked turn by turn under one session id, and the
last turn is scored like a single gold question.

    conversations = load_conversations(Path("eval/questions/multiturn.jsonl"))
    result = run_conversations(HttpConversationBackend("http://127.0.0.1:8000"), conversations)
    result.last_hit_at_5, result.last_refusal        # issue 10's bars: ≥ 0.85 and ≥ 0.8

    policyqa eval --gold eval/questions/multiturn.jsonl --multiturn --url http://127.0.0.1:8000
    policyqa eval --gold eval/questions/multiturn.jsonl --multiturn --kb /tmp/conv-demo-kb      # in process
    python -m eval.multiturn --check eval/questions/multiturn.jsonl                            # evidence vs corpus
    python -m eval.multiturn --kb KB --no-context eval/questions/multiturn.jsonl               # baseline: no context
    python -m eval.multiturn --kb KB --clarify-rate eval/questions/tune.jsonl ../shared/eval/dev.jsonl

Format, one conversation a line: {"id", "category", "turns": [turn, …]} with 2–3 turns, each turn in the single-turn
gold format ({"question", "sources", "evidence_any", "answerable": true} or {"question", "answerable": false}).
Categories: quantity, condition, exception, holiday, city (follow-ups), switch (a new topic that must not carry over),
unanswerable (a follow-up the knowledge base cannot answer). An optional "split": "tune" (the default: what the
conversation rules' thresholds were chosen on) or "holdout" (written before those thresholds were chosen and never
used to choose them); the figures are printed for all conversations and for each split.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBase
from qa_service.engine import QAEngine

from . import check_gold
from .gold import GoldQuestion, check_problems, load_gold, parse_gold_line, read_jsonl
from .metrics import Returned, score_question

MAX_TURNS = 3
SPLITS = ("tune", "holdout")


@dataclass(frozen=True)
class GoldConversation:
    id: str
    category: str
    turns: tuple[GoldQuestion, ...]
    split: str = "tune"


def load_conversations(path: Path) -> list[GoldConversation]:
    """Read and validate a multi-turn gold file; GoldFileError lists every problem by line."""
    problems: list[str] = []
    out: list[GoldConversation] = []
    seen: set[str] = set()
    for where, _lineno, obj in read_jsonl(path, problems):
        cid, turns = obj.get("id") if isinstance(obj, dict) else None, obj.get("turns") if isinstance(obj, dict) else None
        if not isinstance(cid, str) or not cid or cid in seen:
            problems.append(f"{where}: 'id' must be a unique non-empty string")
            continue
        if not isinstance(turns, list) or not 2 <= len(turns) <= MAX_TURNS:
            problems.append(f"{where}: 'turns' must hold 2 to {MAX_TURNS} turns")
            continue
        parsed = [parse_gold_line({**t, "id": f"{cid}#{i + 1}"} if isinstance(t, dict) else t, f"{where} turn {i + 1}", problems)
                  for i, t in enumerate(turns)]
        if any(p is None for p in parsed):
            continue
        split = obj.get("split", "tune")
        if split not in SPLITS:
            problems.append(f"{where}: 'split' must be one of {', '.join(SPLITS)}")
            continue
        seen.add(cid)
        out.append(GoldConversation(cid, str(obj.get("category") or ""), tuple(parsed), split))
    if not out and not problems:
        problems.append(f"{path}: no conversations")
    check_problems(path, problems)
    return out


# ---------------------------------------------------------------------- backends: one session per conversation
class HttpConversationBackend:
    """A running server's public API: POST /v1/ask with one session_id per conversation (the server issues it with the
    first answer; each later turn sends it back)."""

    kind = "http"

    def __init__(self, url: str, timeout: float = 60.0, api_key: str | None = None):
        import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)
        self.issued: dict[str, str | None] = {}  # our conversation id → the session id the server issued for it

    def ask(self, question: str, session_id: str, top_k: int) -> tuple[Returned, str | None]:
        t0 = time.perf_counter()
        try:
            r = self.client.post("/v1/ask", json={"question": question, "session_id": self.issued.get(session_id),
                                                  "top_k": top_k})
        except Exception as e:  # scored as an error, the run goes on
            return Returned(None, error=f"{type(e).__name__}: {e}"), None
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            return Returned(None, latency_ms=ms, error=f"HTTP {r.status_code}: {r.text[:200]}"), None
        d = r.json()
        self.issued[session_id] = d.get("session_id")
        return Returned.from_api(d, ms), d.get("understood_question")

    def close(self) -> None:
        self.client.close()


class InProcessConversationBackend:
    """QAEngine.ask(..., session_id=…, record=False) over a knowledge base, sessions kept in memory."""

    kind = "in-process"

    def __init__(self, kb):
        kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase.open(kb)
        self.engine = QAEngine(kb, get_settings().model_copy(update={"session_store": "memory"}))

    def ask(self, question: str, session_id: str, top_k: int) -> tuple[Returned, str | None]:
        t0 = time.perf_counter()
        try:
            a = self.engine.ask(question, top_k=top_k, session_id=session_id, record=False)
        except Exception as e:
            return Returned(None, error=f"{type(e).__name__}: {e}"), None
        return Returned.from_model(a, (time.perf_counter() - t0) * 1000), a.understood_question

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------- the run
@dataclass
class TurnRecord:
    conversation: str
    category: str
    turn: int
    question: str
    answerable: bool
    answered: bool | None
    hit_rank: int | None
    understood: str | None
    top: str
    error: str | None = None
    split: str = "tune"
    helpful: bool = False  # answered with citation 1 right, or suggested with a right article among them
    status: str | None = None


@dataclass
class MultiturnResult:
    records: list[TurnRecord] = field(default_factory=list)

    def _last(self) -> list[TurnRecord]:
        last: dict[str, TurnRecord] = {}
        for r in self.records:
            last[r.conversation] = r
        return list(last.values())

    def only(self, split: str) -> "MultiturnResult":
        return MultiturnResult([r for r in self.records if r.split == split])

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(r.split == s for r in self.records)]

    @staticmethod
    def _rate(flags: list[bool]) -> float | None:
        return sum(flags) / len(flags) if flags else None

    @property
    def last_hit_at_5(self) -> float | None:
        return self._rate([r.hit_rank is not None and r.hit_rank <= 5 for r in self._last() if r.answerable])

    @property
    def last_hit_at_1(self) -> float | None:
        return self._rate([r.hit_rank == 1 for r in self._last() if r.answerable])

    @property
    def last_helpful(self) -> float | None:
        return self._rate([r.helpful for r in self._last() if r.answerable])

    @property
    def last_none_unanswerable(self) -> float | None:
        return self._rate([r.status == "none" for r in self._last() if not r.answerable])

    @property
    def last_refusal(self) -> float | None:
        return self._rate([r.answered is False for r in self._last() if not r.answerable])

    @property
    def first_hit_at_5(self) -> float | None:
        return self._rate([r.hit_rank is not None and r.hit_rank <= 5 for r in self.records if r.turn == 1 and r.answerable])

    @property
    def switch_carried(self) -> float | None:
        """Share of topic switches that were wrongly completed from the previous turn (should be 0)."""
        return self._rate([r.understood is not None for r in self._last() if r.category == "switch"])

    @property
    def follow_ups_understood(self) -> float | None:
        """Share of follow-up last turns shown with an understood question."""
        return self._rate([r.understood is not None for r in self._last() if r.category != "switch"])

    def summary(self) -> dict:
        last = self._last()
        return {
            "conversations": len(last),
            "last_answerable": sum(r.answerable for r in last),
            "last_unanswerable": sum(not r.answerable for r in last),
            "last_hit_at_1": self.last_hit_at_1,
            "last_hit_at_5": self.last_hit_at_5,
            "last_refusal_unanswerable": self.last_refusal,
            "last_helpful": self.last_helpful,
            "last_none_unanswerable": self.last_none_unanswerable,
            "first_turn_hit_at_5": self.first_hit_at_5,
            "switch_carried_over": self.switch_carried,
            "follow_ups_understood": self.follow_ups_understood,
            "errors": sum(r.error is not None for r in self.records),
        }


def run_conversations(backend, conversations: list[GoldConversation], top_k: int = 5, context: bool = True) -> MultiturnResult:
    """`context=False` asks every turn on its own (no session): the baseline before issue 10."""
    result = MultiturnResult()
    for conv in conversations:
        session = f"eval-{conv.id}-{uuid.uuid4().hex[:8]}" if context else None
        for i, q in enumerate(conv.turns, start=1):
            returned, understood = backend.ask(q.question, session, top_k)
            s = score_question(q, returned)
            top = returned.citations[0] if returned.citations else None
            result.records.append(TurnRecord(conv.id, conv.category, i, q.question, q.answerable, returned.answered,
                                             s.hit_rank, understood,
                                             f"《{top.title}》{top.section.split('>')[-1].strip()}" if top else "",
                                             returned.error, conv.split, s.helpful, s.status))
    return result


def print_result(console, result: MultiturnResult) -> None:
    parts = [("all", result)] + ([(s, result.only(s)) for s in result.splits()] if len(result.splits()) > 1 else [])
    summaries = [(name, part.summary()) for name, part in parts]
    s = summaries[0][1]
    table = Table(title=f"multi-turn: {s['conversations']} conversations "
                        f"({s['last_answerable']} answerable / {s['last_unanswerable']} unanswerable last turns)")
    table.add_column("metric")
    for name, _ in summaries:
        table.add_column(name)
    for k in s:
        table.add_row(k, *(f"{v[k]:.3f}" if isinstance(v[k], float) else str(v[k]) for _, v in summaries))
    console.print(table)
    for r in result._last():
        ok = (r.hit_rank is not None and r.hit_rank <= 5) if r.answerable else r.answered is False
        if r.category == "switch" and r.understood:
            ok = False
        if not ok:
            console.print(f"[red]✗[/] {r.conversation} ({r.category}, {r.split}) {r.question} → understood={r.understood!r} "
                          f"answered={r.answered} top={r.top} {r.error or ''}", highlight=False)


def run_cli(gold: Path, kb: Path | None, url: str | None, top_k: int, json_out: Path | None, api_key: str | None,
            console, records_out: Path | None = None) -> MultiturnResult:
    """`policyqa eval --multiturn`: the summary to `json_out`, every turn's record to `records_out` (on demand)."""
    conversations = load_conversations(gold)
    if url:
        backend = HttpConversationBackend(url, api_key=api_key)
    else:
        backend = InProcessConversationBackend(kb)  # None: POLICYQA_KB or the default knowledge base
    try:
        result = run_conversations(backend, conversations, top_k=top_k)
    finally:
        backend.close()
    print_result(console, result)
    head = {"gold": str(gold), "backend": backend.kind, "url": url, "kb": str(kb) if kb else None}
    if json_out:
        _write(json_out, {**head, "summary": result.summary(),
                          "splits": {name: result.only(name).summary() for name in result.splits()}})
        console.print(f"wrote {json_out}", highlight=False)
    if records_out:
        _write(records_out, {**head, "records": [r.__dict__ for r in result.records]})
        console.print(f"wrote {records_out}", highlight=False)
    return result


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", "utf-8")


# ---------------------------------------------------------------------- evidence check against the corpus
def check(path: Path, corpus: Path | None = None, demo: Path | None = None) -> int:
    """Every turn through eval.check_gold's checks (evidence inside one article of a matching document)."""
    conversations = load_conversations(path)
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / f"{path.stem}-turns.jsonl"
        with flat.open("w", encoding="utf-8") as f:
            for conv in conversations:
                for q in conv.turns:
                    line = {"id": q.id, "question": q.question, "answerable": q.answerable}
                    if q.answerable:
                        line.update(sources=list(q.sources), evidence_any=list(q.evidence_any))
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return check_gold.check_files([flat], corpus or check_gold.DEFAULT_CORPUS, demo or check_gold.DEFAULT_DEMO)


def clarify_rate(kb: Path, gold_files: list[Path]) -> dict:
    """How often clarifying choices replace an answer to an answerable gold question (it must nearly never happen)."""
    engine = QAEngine(KnowledgeBase.open(kb), get_settings().model_copy(update={"session_store": "memory"}))
    out = {}
    for path in gold_files:
        answerable = [q for q in load_gold(path) if q.answerable]
        fired = [q.question for q in answerable if engine.ask(q.question, record=False).choices]
        out[str(path)] = {"answerable": len(answerable), "fired": len(fired), "questions": fired}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="multi-turn gold conversations: check, score, baseline, clarify rate")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="verify every turn's evidence against the corpus")
    ap.add_argument("--kb", type=Path, help="score in process over this knowledge base")
    ap.add_argument("--no-context", action="store_true", help="baseline: every turn asked on its own")
    ap.add_argument("--clarify-rate", action="store_true", help="FILES are single-turn gold files: how often choices fire")
    args = ap.parse_args(argv)
    if args.check:
        return max(check(f) for f in args.files)
    if args.clarify_rate:
        print(json.dumps(clarify_rate(args.kb, args.files), ensure_ascii=False, indent=1))
        return 0
    backend = InProcessConversationBackend(args.kb)
    result = run_conversations(backend, load_conversations(args.files[0]), context=not args.no_context)
    print_result(Console(), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
