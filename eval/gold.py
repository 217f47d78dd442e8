"""Gold question files: one JSON object a line, in the format of ../shared/README.md.

    questions = load_gold(Path("../shared/eval/dev.jsonl"))
    answerable = [q for q in questions if q.answerable]
    answerable[0].sources, answerable[0].evidence_any   # title substrings, evidence substrings

Answerable: {"id", "question", "sources": [str, …], "evidence_any": [str, …], "answerable": true}
Unanswerable: {"id", "question", "answerable": false}
Any other keys (e.g. "category", "tags", "note") are kept in `extra` and may be used for breakdowns.
A malformed file is rejected whole, with every problem named by line, so no figure is ever computed
from a silently truncated question set.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

KNOWN_KEYS = {"id", "question", "sources", "evidence_any", "answerable"}


class GoldFileError(ValueError):
    """The gold file cannot be used as it is; the message lists every problem with its line number."""


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answerable: bool
    sources: tuple[str, ...] = ()  # substrings of the cited title or of one of its source titles; any may match
    evidence_any: tuple[str, ...] = ()  # substrings of the cited quote (and of the answer); any may match
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def tags(self) -> list[str]:
        """Labels for breakdowns: `tags`, plus `category` when given."""
        tags = [t for t in self.extra.get("tags") or [] if isinstance(t, str)]
        cat = self.extra.get("category")
        return tags + ([cat] if isinstance(cat, str) and cat and cat not in tags else [])


def _string_list(value, key: str, problems: list[str], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: '{key}' must be a non-empty list of strings")
        return ()
    bad = [v for v in value if not isinstance(v, str) or not "".join(v.split())]
    if bad:
        problems.append(f"{where}: '{key}' has empty or non-string items {bad!r}")
        return ()
    return tuple(value)


def parse_gold_line(obj: object, where: str, problems: list[str]) -> GoldQuestion | None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    qid, question, answerable = obj.get("id"), obj.get("question"), obj.get("answerable")
    n_before = len(problems)
    if not isinstance(qid, str) or not qid.strip():
        problems.append(f"{where}: 'id' must be a non-empty string")
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{where}: 'question' must be a non-empty string")
    if not isinstance(answerable, bool):
        problems.append(f"{where}: 'answerable' must be true or false")
    sources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    if answerable is True:
        sources = _string_list(obj.get("sources"), "sources", problems, where)
        evidence = _string_list(obj.get("evidence_any"), "evidence_any", problems, where)
    elif answerable is False and (obj.get("sources") or obj.get("evidence_any")):
        # An unanswerable question with evidence is contradictory; scoring it either way would be a guess.
        problems.append(f"{where}: an unanswerable question must not carry 'sources' or 'evidence_any'")
    if len(problems) > n_before:
        return None
    extra = {k: v for k, v in obj.items() if k not in KNOWN_KEYS}
    return GoldQuestion(qid, question, answerable, sources, evidence, extra)


def read_jsonl(path: Path, problems: list[str]) -> Iterator[tuple[str, int, object]]:
    """Each non-blank line of a JSONL file (UTF-8, BOM allowed) as (where, line number, value): a line that is not
    JSON goes to `problems`; GoldFileError when the file cannot be read."""
    try:
        text = Path(path).read_text("utf-8-sig")
    except OSError as e:
        raise GoldFileError(f"{path}: cannot read: {e}") from e
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{Path(path).name}:{lineno}"
        try:
            yield where, lineno, json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not valid JSON ({e.msg})")


def check_problems(path: Path, problems: list[str]) -> None:
    """GoldFileError listing every problem, if there is one: a file is used whole or not at all."""
    if problems:
        raise GoldFileError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read and validate a gold JSONL file (blank lines allowed); raises GoldFileError listing every problem."""
    problems: list[str] = []
    questions: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    for where, lineno, obj in read_jsonl(path, problems):
        q = parse_gold_line(obj, where, problems)
        if q is None:
            continue
        if q.id in seen:
            problems.append(f"{where}: duplicate id {q.id!r} (first on line {seen[q.id]})")
            continue
        seen[q.id] = lineno
        questions.append(q)
    if not questions and not problems:
        problems.append(f"{path}: no questions")
    check_problems(path, problems)
    return questions


DEMO_TAG = "demo"


def select_questions(questions: list[GoldQuestion], tag: str | None = None, demo_subset: bool = False) -> list[GoldQuestion]:
    """`tag`: only questions carrying it. `demo_subset`: the answerable questions tagged `demo` (answerable from
    the bundled demo knowledge base) plus every unanswerable one (nothing in the whole corpus answers those,
    so nothing in the demo does either)."""
    out = list(questions)
    if tag:
        out = [q for q in out if tag in q.tags]
    if demo_subset:
        out = [q for q in out if not q.answerable or DEMO_TAG in q.tags]
    return out
