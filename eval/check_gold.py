"""Verify gold question files against the shared corpus.

Usage (from the project root)::

    /work/venv/bin/python -m eval.check_gold eval/questions/tune.jsonl eval/questions/test.jsonl ../shared/eval/dev.jsonl

For every answerable question, at least one corpus document whose title (the
``# `` line of a Markdown file; for ``plans/`` the whole text) contains one of
``sources`` must also contain one of ``evidence_any``, comparing with all
whitespace removed -- the same rule the retrieval eval uses for a hit.

Further checks (failures unless noted):

* ids are unique across all files given;
* each line is a JSON object with ``id``, ``question`` and a boolean
  ``answerable``; answerable questions have non-empty ``sources`` and
  ``evidence_any``; unanswerable ones have neither;
* a matching evidence string lies inside a single article (``第X条``) or
  paragraph, not across two;
* questions tagged ``version`` are answered by the newest version of a
  multi-version title, and their evidence does not occur in an older version;
* questions carrying ``tags`` are tagged ``demo`` exactly when they are
  answerable from the bundled demo knowledge base
  (``qa_service/demo/corpus``); files without tags (dev.jsonl) are only
  reported;
* evidence strings outside 6-30 characters, or copied verbatim into the
  question, are reported as warnings;
* with ``--held-out FILE`` (e.g. ``eval/questions/test.jsonl``), a question
  overlapping a held-out one fails: it is answered by the same article (a
  law's; plans are compared by evidence only), one's evidence string contains the other's, or the two
  questions share more than half their character bigrams (Jaccard).  Only
  the two ids are printed, never the held-out question's text, so a new
  file can be checked against the test set without anyone reading it.

Prints per-file counts (answerable / unanswerable / demo-answerable / per tag)
and exits non-zero if any check failed (``--min-answerable`` /
``--min-unanswerable`` add lower bounds on the totals).  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"
DEFAULT_DEMO = PROJECT_ROOT / "qa_service" / "demo" / "corpus"

_WS = re.compile(r"\s+")
_ARTICLE = re.compile(r"^第[一二三四五六七八九十百千零〇两]+条")
_VERSION = re.compile(r"\((\d{4}-\d{2}-\d{2})\)\.md$")


def squash(text: str) -> str:
    """Remove all whitespace (incl. full-width spaces), as the eval does."""
    return _WS.sub("", text)


@dataclass
class Doc:
    rel: str  # path relative to the corpus root
    name: str  # file name
    title: str
    is_plan: bool
    text: str  # whitespace removed
    units: list[str] = field(default_factory=list)  # articles / paragraphs, whitespace removed
    date: str = ""

    def source_matches(self, source: str) -> bool:
        s = squash(source)
        return s in (self.text if self.is_plan else squash(self.title))


def _split_units(raw: str, is_plan: bool) -> list[str]:
    lines = raw.splitlines()
    if is_plan:
        return [squash(ln) for ln in lines if ln.strip()]
    units: list[list[str]] = [[]]
    for ln in lines:
        s = ln.strip()
        if s.startswith("#") or _ARTICLE.match(s):
            units.append([ln])
        else:
            units[-1].append(ln)
    return [squash("\n".join(u)) for u in units if u]


def load_corpus(root: Path) -> list[Doc]:
    docs: list[Doc] = []
    for dirpath, _dirs, files in os.walk(root):
        for fn in sorted(files):
            if not (fn.endswith(".md") or fn.endswith(".txt")):
                continue
            path = Path(dirpath) / fn
            rel = path.relative_to(root).as_posix()
            raw = path.read_text(encoding="utf-8", errors="replace")
            is_plan = rel.startswith("plans/") or not fn.endswith(".md")
            title = ""
            for ln in raw.splitlines():
                if ln.startswith("# "):
                    title = ln[2:].strip()
                    break
            if not title:
                title = fn.rsplit(".", 1)[0]
            m = _VERSION.search(fn)
            docs.append(
                Doc(
                    rel=rel,
                    name=fn,
                    title=title,
                    is_plan=is_plan,
                    text=squash(raw),
                    units=_split_units(raw, is_plan),
                    date=m.group(1) if m else "",
                )
            )
    return docs


def find_hits(docs: list[Doc], sources: list[str], evidence: list[str]) -> list[tuple[Doc, str]]:
    hits = []
    for d in docs:
        if not any(d.source_matches(s) for s in sources):
            continue
        for e in evidence:
            if squash(e) and squash(e) in d.text:
                hits.append((d, e))
    return hits


def load_questions(path: Path) -> tuple[list[dict], list[str]]:
    qs, errs = [], []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as exc:
                errs.append(f"{path}:{n}: bad JSON: {exc}")
                continue
            if not isinstance(q, dict):
                errs.append(f"{path}:{n}: not a JSON object")
                continue
            q["_line"] = n
            qs.append(q)
    return qs, errs


BIGRAM_JACCARD = 0.5  # questions sharing more of their character bigrams than this overlap


def bigrams(text: str) -> set[str]:
    s = squash(text)
    return {s[i:i + 2] for i in range(len(s) - 1)}


def answering_units(docs: list[Doc], q: dict) -> set[tuple[str, int]]:
    """(document, unit index) of every article holding one of an answerable question's evidence (a plan's lines are
    whole sections, too coarse to call two questions on one the same: plans are compared by evidence only)."""
    out = set()
    for d, e in find_hits(docs, q.get("sources") or [], q.get("evidence_any") or []):
        if d.is_plan:
            continue
        out.update((d.rel, i) for i, u in enumerate(d.units) if squash(e) in u)
    return out


@dataclass(frozen=True)
class Overlap:
    """What two questions are compared on: answering articles, evidence strings, character bigrams."""

    id: str
    units: frozenset
    evidence: tuple[str, ...]
    grams: frozenset

    @classmethod
    def of(cls, docs: list[Doc], q: dict) -> "Overlap":
        return cls(str(q.get("id")), frozenset(answering_units(docs, q) if q.get("answerable") else ()),
                   tuple(squash(e) for e in q.get("evidence_any") or [] if squash(e)),
                   frozenset(bigrams(q.get("question", ""))))

    def why(self, other: "Overlap") -> str | None:
        if self.units & other.units:
            return "same article"
        if any(a in b or b in a for a in self.evidence for b in other.evidence):
            return "evidence"
        if self.grams and other.grams and len(self.grams & other.grams) / len(self.grams | other.grams) > BIGRAM_JACCARD:
            return "wording"
        return None


def overlaps(docs: list[Doc], q: dict, held: list[Overlap]) -> list[tuple[str, str]]:
    """(held-out id, why) for every held-out question `q` overlaps."""
    mine = Overlap.of(docs, q)
    return [(h.id, why) for h in held if (why := mine.why(h))]


# over 60 lines: one pass over the gold files, each rule reported in turn
def check_files(
    paths: list[Path], corpus: Path, demo: Path, min_answerable: int = 0, min_unanswerable: int = 0,
    held_out: list[Path] | None = None,
) -> int:
    docs = load_corpus(corpus)
    if not docs:
        print(f"no corpus documents under {corpus}", file=sys.stderr)
        return 2
    demo_names = {p.name for p in demo.rglob("*") if p.is_file()} if demo.is_dir() else set()
    by_title: dict[str, list[Doc]] = {}
    for d in docs:
        if not d.is_plan:
            by_title.setdefault(d.title, []).append(d)

    failures: list[str] = []
    warnings: list[str] = []
    seen_ids: dict[str, str] = {}
    totals = Counter()
    held: list[Overlap] = []
    for path in held_out or []:
        qs, errs = load_questions(path)
        failures.extend(errs)
        held += [Overlap.of(docs, h) for h in qs]

    for path in paths:
        qs, errs = load_questions(path)
        failures.extend(errs)
        counts = Counter()
        tag_counts = Counter()
        for q in qs:
            where = f"{path.name}:{q['_line']} [{q.get('id')}]"
            qid = q.get("id")
            if not isinstance(qid, str) or not qid:
                failures.append(f"{where}: missing id")
            elif qid in seen_ids:
                failures.append(f"{where}: duplicate id (also in {seen_ids[qid]})")
            else:
                seen_ids[qid] = path.name
            if not isinstance(q.get("question"), str) or not q["question"].strip():
                failures.append(f"{where}: missing question")
            ans = q.get("answerable")
            if not isinstance(ans, bool):
                failures.append(f"{where}: 'answerable' must be true or false")
                continue
            for held_id, why in overlaps(docs, q, held) if held else []:
                failures.append(f"{where}: overlaps held-out question {held_id} ({why})")
            tags = q.get("tags")
            has_tags = isinstance(tags, list)
            for t in tags or []:
                tag_counts[t] += 1

            if not ans:
                counts["unanswerable"] += 1
                if q.get("sources") or q.get("evidence_any"):
                    failures.append(f"{where}: unanswerable question has sources/evidence_any")
                if has_tags and "demo" in tags:
                    failures.append(f"{where}: unanswerable question tagged demo")
                continue

            counts["answerable"] += 1
            sources = q.get("sources") or []
            evidence = q.get("evidence_any") or []
            if not sources or not evidence:
                failures.append(f"{where}: answerable question needs sources and evidence_any")
                continue
            squashed_q = squash(q["question"])
            for e in evidence:
                n = len(squash(e))
                if not 6 <= n <= 30:
                    warnings.append(f"{where}: evidence {e!r} has {n} characters (want 6-30)")
                if squash(e) in squashed_q:
                    warnings.append(f"{where}: question copies evidence {e!r}")

            hits = find_hits(docs, sources, evidence)
            if not hits:
                failures.append(
                    f"{where}: no document titled like {sources} contains any of {evidence}  | {q['question']}"
                )
                continue
            in_unit = [(d, e) for d, e in hits if any(squash(e) in u for u in d.units)]
            if not in_unit:
                failures.append(
                    f"{where}: evidence found only across article/paragraph boundaries in "
                    f"{sorted({d.rel for d, _ in hits})}"
                )

            demo_ok = any(d.name in demo_names for d, _ in in_unit or hits)
            if demo_ok:
                counts["demo_answerable"] += 1
            if has_tags:
                if "demo" in tags and not demo_ok:
                    failures.append(f"{where}: tagged demo but no matching document is in {demo}")
                if demo_ok and "demo" not in tags:
                    failures.append(f"{where}: answerable from the demo KB but not tagged demo")
                if "version" in tags:
                    for d, e in hits:
                        versions = by_title.get(d.title, [])
                        if len(versions) < 2:
                            warnings.append(f"{where}: tagged version but {d.title} has one version")
                            continue
                        newest = max(v.date for v in versions)
                        if d.date != newest:
                            failures.append(
                                f"{where}: version question: evidence {e!r} occurs in "
                                f"superseded {d.rel} (newest is {newest})"
                            )
        totals.update(counts)
        tag_txt = ", ".join(f"{t}={n}" for t, n in sorted(tag_counts.items(), key=lambda x: (-x[1], x[0])))
        print(
            f"{path}: {counts['answerable'] + counts['unanswerable']} questions: "
            f"answerable={counts['answerable']} (demo-answerable={counts['demo_answerable']}) "
            f"unanswerable={counts['unanswerable']}"
        )
        if tag_txt:
            print(f"    tags: {tag_txt}")

    if len(paths) > 1:
        print(
            f"TOTAL: answerable={totals['answerable']} (demo-answerable={totals['demo_answerable']}) "
            f"unanswerable={totals['unanswerable']}"
        )
    if totals["answerable"] < min_answerable:
        failures.append(f"only {totals['answerable']} answerable questions (want >= {min_answerable})")
    if totals["unanswerable"] < min_unanswerable:
        failures.append(f"only {totals['unanswerable']} unanswerable questions (want >= {min_unanswerable})")
    for w in warnings:
        print(f"WARN  {w}")
    for f in failures:
        print(f"FAIL  {f}")
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all checks passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="gold question JSONL files")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"corpus root (default {DEFAULT_CORPUS})")
    ap.add_argument("--demo", type=Path, default=DEFAULT_DEMO, help=f"demo KB corpus (default {DEFAULT_DEMO})")
    ap.add_argument("--min-answerable", type=int, default=0, help="fail if fewer answerable questions in total")
    ap.add_argument("--min-unanswerable", type=int, default=0, help="fail if fewer unanswerable questions in total")
    ap.add_argument("--held-out", type=Path, action="append", default=[],
                    help="a held-out gold file the checked questions must not overlap (ids only are printed)")
    args = ap.parse_args(argv)
    return check_files(args.files, args.corpus, args.demo, args.min_answerable, args.min_unanswerable,
                       args.held_out)


if __name__ == "__main__":
    sys.exit(main())
