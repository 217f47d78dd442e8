"""Answer composition without an LLM: quote the official text, name the article, score the confidence,
refuse honestly below the threshold.

    composer = AnswerComposer(settings)
    draft = composer.extractive(query, evidence, idf=retriever.idf)
    draft.lead, draft.excerpt   # -> "根据《失业保险条例》第十七条", "累计缴费时间满1年不足5年的，…最长为12个月；…"
    draft.confidence            # in [0, 1]; compare with settings.refusal_threshold

A `Draft` is channel-neutral; `qa_service.channels` renders it for web, hotline or new media.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from ingest.structure import article_anchor
from knowledge_base.models import Citation, FaqEntry, StoredDocument, Validity
from knowledge_base.retrieval import UNKNOWN_WORD_IDF, ChunkText, Hit
from knowledge_base.settings import Settings
from knowledge_base.text import fold

from .normalize import NormalizedQuery

# Confidence = logistic(CONF_BIAS + CONF_DENSE · best cosine + CONF_COVERAGE · coverage), where "best cosine" is
# the highest cosine between the question and any allowed passage and "coverage" the idf-weighted share of the
# question's content words found in one of the top 3 passages (title and section included). Of the single features
# and pairs tried on a slice of the corpus (top-hit cosine, best cosine, coverage of top 1 / top 3, cosine gaps to
# the 10th / 50th passage, BM25 / idf mass, missing-word idf), this pair separated best. Refitted on the full corpus
# with the chosen retrieval (`python -m eval.tune_retrieval`: logistic regression, answerable vs unanswerable,
# dev.jsonl + eval/questions/tune.jsonl, 98 answerable and 24 unanswerable): AUC 0.939 (best cosine alone 0.892,
# coverage alone 0.889). The bias is shifted so that 0.5 (settings.refusal_threshold) sits at the operating point
# with the most refusals among those with at most 8 % false refusals: there refusal (U) 0.750, false refusal (A)
# 0.031 on those questions. Our unanswerable questions are deliberately close to the corpus (社保卡补办, 公积金贷款额度),
# harder than the dev set's five; `policyqa eval --sweep` prints the trade-off on any gold file.
CONF_BIAS = -63.59
CONF_DENSE = 67.82
CONF_COVERAGE = 5.73

QUOTE_CANDIDATES = 3  # passages considered for the quote (see quote_first)
QUANTITY_MISSING_CONFIDENCE = 0.2  # confidence cap when a quantity was asked and no passage near the top states one
QUOTE_MARGIN = 0.15  # how much more of the question a lower passage's best sentence must say to be quoted instead
EXCERPT_CHARS = 220  # what an extractive answer quotes at most (a citizen reads it on a phone)
_SENTENCE = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’\"'」』）)\]】]*|\n)|[^。！？；!?;\n]+")
_ARTICLE = re.compile(r"^\s*(第[一二三四五六七八九十百千零〇两\d]+条(?:之[一二三四五六七八九十]+)?)")
_NUMERAL = re.compile(r"[0-9一二三四五六七八九十两半百千]")
# A question that asks for a quantity (多少钱, 几天, 多久, 百分之几) is answered only by a passage that states one: a
# digit, or a Chinese numeral with a unit (三个月, 十五日, 二分之一); article and item numbers (第十条, （二）) do not
# count. On dev.jsonl + tune.jsonl every unanswerable question that was answered asked for a quantity the quoted
# passage did not state (积分落户多少分, 停车费多少), and so did 6 of the answerable ones, all wrong quotes.
_QUANTITY_ASKED = re.compile(r"多少|几[天个年月日次岁周分元倍项名小时级种号]|百分之几|多长时间|多久|多高|多大年龄|多大的|哪一天")
_QUANTITY = re.compile(
    r"[0-9０-９]|百分之|[一二三四五六七八九十百千万两半]+(?:分之|[个年月日天周岁元倍次分项名人号度米吨层户‰%]|小时|工作日|公里|平方)"
)
_NUMBERING = re.compile(r"第[一二三四五六七八九十百千零〇两\d]+[条款项章节编]|[（(][一二三四五六七八九十\d]+[)）]")


def asks_quantity(question: str) -> bool:
    return bool(_QUANTITY_ASKED.search(question))


def states_quantity(text: str) -> bool:
    return bool(_QUANTITY.search(_NUMBERING.sub("", text)))


_ENUMERATED = re.compile(r"^\s*(?:\([一二三四五六七八九十]+\)|（[一二三四五六七八九十]+）)")
_OUTLINE = re.compile(r"^\s*((?:[一二三四五六七八九十]+、|\([一二三四五六七八九十]+\)|（[一二三四五六七八九十]+）|\d+[.．、]))\s*([^。，,；;:：\n]{0,24})")


@dataclass
class Evidence:
    """A retrieved passage with its text and document: what a citation is made of."""

    hit: Hit
    chunk: ChunkText
    document: StoredDocument


@dataclass
class Draft:
    """A channel-neutral answer."""

    answered: bool
    confidence: float
    lead: str = ""  # 根据《…》第十八条
    source: str = ""  # 《失业保险条例》第十八条: the answer's source, named as a citizen reads it
    article: str = ""  # the article / outline item of the first citation the excerpt comes from (第十八条)
    excerpt: str = ""  # the quoted sentences (or the FAQ's curated answer)
    key_points: list[str] = field(default_factory=list)  # sentences an operator reads out
    citations: list[Citation] = field(default_factory=list)
    faq: FaqEntry | None = None
    notice: str = ""  # e.g. that the cited version is no longer in force
    department: str | None = None  # who to contact on a refusal, when the question names it
    generated: bool = False  # the text came from the generative mode


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.findall(text) if s.strip()]


def coverage(words: list[str], text: str, idf: Callable[[str], float]) -> float:
    """Share of the question's idf mass whose words occur in `text` (folded): how much of the question it speaks to."""
    uniq = list(dict.fromkeys(words))
    if not uniq:
        return 0.0
    folded = fold(text).lower()
    weights = [idf(t) or UNKNOWN_WORD_IDF for t in uniq]
    present = sum(w for t, w in zip(uniq, weights) if t in folded)
    return present / sum(weights)


def confidence(best_cosine: float, cov: float) -> float:
    if math.isnan(best_cosine):
        best_cosine = 0.90  # no query vector: lean on coverage alone
    z = CONF_BIAS + CONF_DENSE * best_cosine + CONF_COVERAGE * cov
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def document_url(settings: Settings, doc_id: str, anchor: str | None) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/documents/{doc_id}" + (f"#{anchor}" if anchor else "")


def display_date(doc: StoredDocument) -> str | None:
    d = doc.meta.published_date or doc.meta.version_date or doc.meta.written_date
    return d.isoformat() if d else None


def document_citation(settings: Settings, rank: int, ev: Evidence, article: str | None = None) -> Citation:
    """`article`: the article the answer quotes (第二十条) when the passage holds several (第十八条至第二十条);
    the link then opens the viewer at that article instead of the passage's first one."""
    doc = ev.document
    anchor, section = ev.chunk.anchor, ev.chunk.section_path
    quoted = article_anchor(article) if article and anchor and anchor.startswith("a-") else None
    if quoted:
        anchor = quoted
        head, _, last = section.rpartition(">")
        if "至" in last:  # "第三章 失业保险待遇 > 第十八条至第二十条" names the article quoted
            section = f"{head.strip()} > {article}" if head else article
    return Citation(
        rank=rank,
        kind="document",
        doc_id=doc.doc_id,
        title=doc.meta.title,
        source_titles=[],
        doc_number=doc.meta.doc_number,
        publisher=doc.meta.publisher,
        published_date=display_date(doc),
        validity=doc.validity,
        section=section,
        quote=ev.chunk.text,
        url=document_url(settings, doc.doc_id, anchor),
        score=round(float(ev.hit.score), 6),
        anchor=anchor,
    )


def article_label(chunk: ChunkText, sentence_index: int, sentences: list[str]) -> str:
    """The article (第十八条) or outline item the chosen sentence belongs to, else the chunk's section."""
    for s in reversed(sentences[: sentence_index + 1]):
        m = _ARTICLE.match(s)
        if m:
            return m.group(1)
    parts = [p.strip() for p in chunk.section_path.split(">") if p.strip()]
    if parts and _ARTICLE.match(parts[-1]):
        return _ARTICLE.match(parts[-1]).group(1)
    heading = None
    for s in reversed(sentences[: sentence_index + 1]):
        m = _OUTLINE.match(s)
        if m:
            heading = (m.group(1) + m.group(2)).strip()
            break
    top = parts[0] if parts and not parts[0].startswith("正文") else ""
    top = re.sub(r"至.*$", "", top)
    if heading and top and not top.startswith(heading):
        return f"{top} {heading}"
    return heading or top


def trim(chunk: ChunkText, query_tokens: list[str], idf: Callable[[str], float],
         need_quantity: bool = False) -> tuple[str, str, list[str]]:
    """(label, excerpt, key sentences): the sentences of the passage that answer, in reading order. With
    `need_quantity`, a sentence that states no quantity counts half when choosing the one to quote."""
    sentences = split_sentences(chunk.text)
    if not sentences:
        return chunk.section_path, chunk.text.strip(), [chunk.text.strip()]
    scores = [coverage(query_tokens, s, idf) for s in sentences]
    if need_quantity:
        scores = [sc if states_quantity(s) else sc * 0.5 for sc, s in zip(scores, sentences)]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    chosen = {best}

    def room() -> int:
        return EXCERPT_CHARS - sum(len(sentences[i]) for i in chosen)

    # A sentence that introduces a list (…下列情形之一的：) is quoted with its items.
    if sentences[best].rstrip().endswith((":", "：")):
        j = best + 1
        while j < len(sentences) and room() > 0:
            chosen.add(j)
            j += 1
    # A list item is quoted after its short lead-in (全体公民放假的节日：（七）国庆节，放假3天).
    elif _ENUMERATED.match(sentences[best]):
        for j in range(best - 1, -1, -1):
            if sentences[j].rstrip().endswith((":", "：")):
                if len(sentences[j]) <= 60:
                    chosen.add(j)
                break
    # Then, while there is room, sentences that speak to the question nearly as well as the best one: first those
    # that add a word of the question not yet quoted, then the others (a second clause often carries the answer:
    # "用人单位未按前款规定提出…的，…1年内，可以直接…提出工伤认定申请").
    covered = _covered(query_tokens, "".join(sentences[i] for i in chosen))
    adds = {i: bool(_covered(query_tokens, sentences[i]) - covered) for i in range(len(sentences))}
    candidates = [
        i for i in range(len(sentences))
        if i not in chosen and scores[i] > 0 and scores[i] >= (0.6 if adds[i] else 0.8) * scores[best]
    ]
    candidates.sort(key=lambda i: (not adds[i], -scores[i], i))
    for i in candidates:
        if len(sentences[i]) <= room():
            chosen.add(i)
    label = article_label(chunk, best, sentences)
    ordered = [sentences[i].strip() for i in sorted(chosen)]
    cleaned = [_strip_label(s) for s in ordered]
    excerpt = "".join(cleaned)
    if len(excerpt) > EXCERPT_CHARS + 80:
        excerpt = excerpt[:EXCERPT_CHARS].rstrip() + "……"
    return label, excerpt, [c for c in cleaned if c]


def _covered(tokens: list[str], text: str) -> set[str]:
    folded = fold(text).lower()
    return {t for t in tokens if t in folded}


def _strip_label(sentence: str) -> str:
    """Drop the 第十八条 prefix (the lead names the article) and stray whitespace."""
    return _ARTICLE.sub("", sentence, count=1).strip()


def best_sentence_coverage(chunk: ChunkText, words: list[str], idf: Callable[[str], float]) -> float:
    return max((coverage(words, s, idf) for s in split_sentences(chunk.text)), default=0.0)


def quote_first(evidence: list[Evidence], words: list[str], idf: Callable[[str], float],
                need_quantity: bool = False) -> list[Evidence] | None:
    """Move to the front the passage among the top QUOTE_CANDIDATES whose best sentence says clearly more of the
    question (by QUOTE_MARGIN) than the top passage's: of two neighbouring articles the one that states
    "职工有下列情形之一的，应当认定为工伤" answers "哪些情况应当认定为工伤", not "…不得认定为工伤". With
    `need_quantity` only passages that state a quantity qualify, and None means none of them does (nothing to
    quote). The quoted passage is always citation [1]."""
    top = evidence[:QUOTE_CANDIDATES]
    allowed = [i for i, ev in enumerate(top) if not need_quantity or states_quantity(ev.chunk.text)]
    if not allowed:
        return None
    scores = {i: best_sentence_coverage(top[i].chunk, words, idf) for i in allowed}
    best = max(allowed, key=lambda i: (scores[i], -i))
    first = allowed[0]
    if best != first and scores[best] < scores[first] + QUOTE_MARGIN:
        best = first
    if best == 0:
        return evidence
    return [evidence[best]] + evidence[:best] + evidence[best + 1 :]


class AnswerComposer:
    """Evidence in, Draft out: extractive answers, FAQ answers and refusals."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def extractive(self, query: NormalizedQuery, evidence: list[Evidence], idf: Callable[[str], float],
                   best_dense: float = math.nan) -> Draft:
        """`best_dense`: the highest cosine between the question and any allowed passage (Retrieved.best_dense)."""
        if not evidence:
            return self.refusal(query, 0.0)
        top = evidence[0]
        words = query.content or query.tokens
        cov = max(coverage(words, ev.chunk.embed_text, idf) for ev in evidence[:3])
        conf = confidence(best_dense if not math.isnan(best_dense) else top.hit.dense, cov)
        # The asker's numbers (不满六个月) do not make a passage relevant, but they do pick the sentence to quote.
        numbers = [t for t in query.tokens if _NUMERAL.search(t) and t not in words]
        need_quantity = asks_quantity(query.original)
        quotable = quote_first(evidence, words, idf, need_quantity)
        if quotable is None:  # asked for an amount, a period, a number: no passage near the top states one
            conf = min(conf, QUANTITY_MISSING_CONFIDENCE)
            need_quantity = False
            quotable = quote_first(evidence, words, idf)
        evidence = quotable
        top = evidence[0]
        label, excerpt, key_points = trim(top.chunk, words + numbers, idf, need_quantity)
        citations = [document_citation(self.settings, i + 1, ev, article=label if i == 0 else None)
                     for i, ev in enumerate(evidence)]
        draft = Draft(
            answered=conf >= self.settings.refusal_threshold,
            confidence=conf,
            lead=f"根据《{top.document.meta.title}》{label}",
            source=f"《{top.document.meta.title}》{label}",
            article=label,
            excerpt=excerpt,
            key_points=key_points[:4],
            citations=citations,
            notice=validity_notice(top.document),
        )
        if not draft.answered:
            return self.refusal(query, conf)
        return draft

    def from_faq(self, entry: FaqEntry, score: float, faq_citation: Citation, sources: list[Evidence]) -> Draft:
        citations = [faq_citation] + [document_citation(self.settings, i + 2, ev) for i, ev in enumerate(sources)]
        return Draft(
            answered=True,
            confidence=round(min(1.0, max(0.0, score)), 4),
            lead="",
            excerpt=entry.answer.strip(),
            source="、".join(f"《{t}》" for t in entry.source_titles) + "、".join(entry.source_articles[:1]),
            key_points=[s.strip() for s in split_sentences(entry.answer)][:4],
            citations=citations,
            faq=entry,
        )

    def refusal(self, query: NormalizedQuery, conf: float) -> Draft:
        return Draft(answered=False, confidence=conf, department=query.organization)


def validity_notice(doc: StoredDocument) -> str:
    if doc.validity == Validity.SUPERSEDED:
        return "注意：所引用的是已被修订的旧版本，现行规定以最新版本为准。"
    if doc.validity == Validity.EXPIRED:
        return "注意：所引用的文件已失效或废止，仅供参考。"
    return ""


def refusal_text(settings: Settings, department: str | None) -> str:
    where = f"，或联系{department}" if department else "或联系相关主管部门"
    return (
        f"抱歉，知识库中暂未找到能够回答这个问题的政策依据，无法给出可靠答复。"
        f"建议拨打{settings.hotline_number}热线咨询{where}。"
    )
