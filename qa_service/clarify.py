"""Clarifying choices (issue 10; issue 21 §3): when a vague question's best passages answer different questions, ask
back with up to three choices instead of guessing; when they are layers of one answer, answer.

    clarifier = Clarifier(ClarifyConfig())
    clarifier.run(nq, evidence, vectors=retriever.vectors)
    # "怎么公开？" -> ["怎么公开（《济南市司法局2025年政务公开工作实施方案》）", "怎么公开（《2024年济南市财政局…》）"]
    # "年假有几天？" -> [] (《职工带薪年休假条例》 is made under 《劳动法》 and says what its 第四十五条 says, in detail)

Only a question with very few content words of its own and no place or office can be vague enough ("怎么公开" names
neither what nor whose). Its candidates are the documents whose passages the encoder ties for it. They are grouped
into subjects: two candidates are one subject when they bind the same people (their places nest, and two offices'
work plans each bind their own office) and one builds on the other or both say the same thing:
- one cites the other: its title or a tied article names it (《劳动合同法实施条例》, "根据劳动法…制定本条例",
  《山东省实施〈残疾人保障法〉办法》), or the two titles name one matter at two levels (劳动合同法 / 山东省劳动合同条例);
- some tied article of one and some tied article of the other are as close as the encoder puts articles that say one
  thing (`same_subject_cosine`): 劳动法第二十一条 and 劳动合同法第十九条 on 试用期.
Choices are asked only between subjects, one per subject (its best-ranked document). A choice is the question scoped
to that document, so choosing it asks again and is answered from that document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from knowledge_base.models import DocType
from knowledge_base.retrieval import document_place
from knowledge_base.text import fold
from knowledge_base.versions import normalize_title

from .layers import applies_to

NATION = "中华人民共和国"
# Where a citation of a law by its short name starts: a text boundary, a bracket, or the words Chinese rules cite with
# ("根据劳动法和公务员法", "依照劳动合同法第四十四条"). Anything else before the name makes it part of a longer one
# (保险法 inside 社会保险法).
_CITES_AFTER = r"(?:^|(?<=[\s，。；：、,.;:（(《<“\"在和及与或])|(?<=根据|依照|依据|按照|遵照|贯彻|实施|执行|违反|适用))"
_NOT_A_NAME_GOING_ON = r"(?![律规])"  # 劳动法律 / 劳动法规 are not 劳动法


@dataclass(frozen=True)
class ClarifyConfig:
    candidates: int = 5  # passages looked at
    max_choices: int = 3
    max_content_words: int = 2  # a question with more content words says what it is about
    # Documents whose best passage is within this cosine of the best one are tied: the encoder cannot tell which
    # is meant. On the demo KB it fired on 0 of the 65 answerable questions of eval/questions/tune.jsonl (demo subset) +
    # ../shared/eval/dev.jsonl with any margin from 0.015 to 0.05, and on 4 of 10 vague ones (需要什么材料？, 条件是什么？);
    # `python -m eval.multiturn --clarify-rate KB FILE…` measures it.
    dense_margin: float = 0.02
    min_coverage: float = 0.99  # every tied document must speak to every content word (else it is not a candidate)
    # Two candidates whose closest tied articles are at least this close (cosine of the stored e5-small passage vectors)
    # say the same thing. Measured on the 62 pairs of tied documents of 54 vague questions over a 35-document labour /
    # social-security / 济南 knowledge base: pairs read as one subject 0.942-0.964 (试用期: 劳动法 ~ 劳动合同法 0.949,
    # 失业保险金: 失业保险条例 ~ 社会保险法 0.962), pairs of different subjects 0.879-0.939, except articles worded
    # alike in laws for different people ("…其他法律、法规规定行政处罚的，从其规定" in 妇女 / 残疾人保障法: 0.948).
    # A re-trained encoder (issue 21 §4) moves this scale: re-measure it then.
    same_subject_cosine: float = 0.945
    # Title endings that say a rule's kind, longest first; what remains is the matter it rules on.
    kinds: tuple[str, ...] = ("实施细则", "实施条例", "实施办法", "条例", "办法", "规定", "细则", "法")
    implementing: str = "实施"  # a kind starting so implements a rule on the same matter (企业X实施办法 → X条例)


@dataclass
class Candidate:
    """One document the question may mean: whom it binds, how it is cited, what it rules on, and its tied passages."""

    title: str
    place: str | None  # None: national
    office: str | None  # a work plan binds its own office; a regulation binds everyone in its place
    matter: str  # the title without place, 中华人民共和国 and kind: 劳动合同法实施条例 → 劳动合同
    implementing: bool
    citation: re.Pattern  # how other texts name it: 《中华人民共和国劳动法》, 根据劳动法
    passages: list = field(default_factory=list)  # Evidence, best first

    def text(self) -> str:
        return fold(" ".join([self.title, *(ev.chunk.text for ev in self.passages)]))


class Clarifier:
    """NormalizedQuery + ranked evidence (+ the passages' vectors) in, up to `max_choices` clarifying questions out
    ([] when the question is not vague, or its candidates are one subject)."""

    def __init__(self, config: ClarifyConfig | None = None):
        self.config = config or ClarifyConfig()

    def run(self, nq, evidence: list, vectors: Callable[[np.ndarray], np.ndarray] | None = None) -> list[str]:
        """`vectors(positions)` gives the stored passage vectors (HybridRetriever.vectors); without it only citations
        and titles join candidates."""
        cfg = self.config
        if len(nq.content) > cfg.max_content_words or nq.region or nq.organization or len(evidence) < 2:
            return []
        candidates = self.candidates(self.tied(evidence))
        if len(candidates) < 2:
            return []
        subjects = self.subjects(candidates, vectors)
        if len(subjects) < 2:
            return []
        question = nq.original.rstrip("？?。 ")
        return [f"{question}（《{subject[0].title}》）" for subject in subjects[: cfg.max_choices]]

    def tied(self, evidence: list) -> list:
        """The passages among the first `candidates` that the encoder cannot tell from the best one."""
        cfg = self.config
        top = evidence[: cfg.candidates]
        best = max((ev.hit.dense for ev in top if ev.hit.dense == ev.hit.dense), default=None)
        if best is None:
            return []
        return [ev for ev in top if best - ev.hit.dense <= cfg.dense_margin and ev.hit.coverage >= cfg.min_coverage]

    def candidates(self, tied: list) -> list[Candidate]:
        """One candidate per work (its versions are one document), in rank order."""
        works: dict[str, Candidate] = {}
        for ev in tied:
            key = normalize_title(ev.document.meta.title)
            if key not in works:
                works[key] = self.candidate(ev.document)
            works[key].passages.append(ev)
        return list(works.values())

    def candidate(self, document) -> Candidate:
        meta = document.meta
        title = fold(meta.title).replace(" ", "")
        place = document_place(document)
        office = fold(meta.publisher).replace(" ", "") if meta.doc_type is DocType.PLAN and meta.publisher else None
        short = title.removeprefix(NATION)
        citation = re.compile(f"{_CITES_AFTER}(?:{NATION})?{re.escape(short)}{_NOT_A_NAME_GOING_ON}")
        matter, kinds = _without_place(short, place), []
        while kind := next((k for k in self.config.kinds if matter.endswith(k) and len(matter) > len(k) + 1), ""):
            matter, kinds = matter.removesuffix(kind), [*kinds, kind]  # 劳动合同法实施条例 → 劳动合同法 → 劳动合同
        return Candidate(meta.title, place, office, matter, any(k.startswith(self.config.implementing) for k in kinds),
                         citation)

    def subjects(self, candidates: list[Candidate], vectors) -> list[list[Candidate]]:
        """Candidates grouped into subjects, in rank order. Each joins the first subject it is one subject with (with
        any member) and binds the same people as (all members): a national law's subject takes 济南's rule or
        淄博's, not both."""
        close = self._closeness(candidates, vectors)
        groups: list[list[int]] = []
        for i, c in enumerate(candidates):
            group = next((g for g in groups if all(_bind_the_same_people(c, candidates[j]) for j in g)
                          and any(self.same_subject(c, candidates[j], close[i, j]) for j in g)), None)
            if group is None:
                groups.append([i])
            else:
                group.append(i)
        return [[candidates[i] for i in g] for g in groups]

    def same_subject(self, a: Candidate, b: Candidate, closeness: float) -> bool:
        """a and b are layers of one answer: they bind the same people, and one builds on the other or they say the
        same thing about the question."""
        if not _bind_the_same_people(a, b):
            return False
        return _builds_on(a, b) or _builds_on(b, a) or closeness >= self.config.same_subject_cosine

    @staticmethod
    def _closeness(candidates: list[Candidate], vectors) -> np.ndarray:
        """Per pair of candidates, the cosine of their closest tied passages (-1 without vectors)."""
        n = len(candidates)
        close = np.full((n, n), -1.0)
        if vectors is None:
            return close
        owner = [i for i, c in enumerate(candidates) for _ in c.passages]
        positions = np.array([ev.hit.position for c in candidates for ev in c.passages], np.int64)
        v = np.asarray(vectors(positions), np.float64)
        v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
        sims = v @ v.T
        for p, i in enumerate(owner):
            for q, j in enumerate(owner):
                if i != j:
                    close[i, j] = max(close[i, j], sims[p, q])
        return close


def _without_place(title: str, place: str | None) -> str:
    """山东省劳动合同条例 → 劳动合同条例 (the place it binds is not part of what it rules on)."""
    if place and title.startswith(place):
        rest = title[len(place):]
        for suffix in ("省", "市", "自治区", "自治州", "地区"):
            if rest.startswith(suffix):
                return rest[len(suffix):]
        return rest
    return title


def _bind_the_same_people(a: Candidate, b: Candidate) -> bool:
    """Rules of places that do not nest (济南 / 淄博), or work plans of two offices, bind different people: a choice
    between them is a real one (whose rule?), however alike they read."""
    if a.office and b.office and a.office != b.office:
        return False
    if a.place is None or b.place is None:
        return True
    return applies_to(a.place, b.place) or applies_to(b.place, a.place)


def _builds_on(a: Candidate, b: Candidate) -> bool:
    """a implements or supplements b: its title or a tied article cites b, or both titles name one matter (the
    local 条例 of a national 法), or a's kind is 实施… and its matter ends with b's (企业职工带薪年休假实施办法)."""
    if len(b.matter) >= 2 and (a.matter == b.matter or (a.implementing and a.matter.endswith(b.matter))):
        return True
    return b.citation.search(a.text()) is not None
