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

from knowledge_base.config import ComposeConfig, ConfidenceModel
from knowledge_base.models import AnswerStatus, Citation, FaqEntry, StoredDocument, Validity
from knowledge_base.places import gazetteer
from knowledge_base.retrieval import ChunkText, Hit
from knowledge_base.settings import Settings
from knowledge_base.text import article_anchor, asks_quantity, coverage, fold, states_quantity

from .normalize import NormalizedQuery

_SENTENCE = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’\"'」』）)\]】]*|\n)|[^。！？；!?;\n]+")
_ARTICLE = re.compile(r"^\s*(第[一二三四五六七八九十百千零〇两\d]+条(?:之[一二三四五六七八九十]+)?)")
_CHAPTER = re.compile(r"^\s*第[一二三四五六七八九十百零〇\d]+[编章节]")
_NUMERAL = re.compile(r"[0-9一二三四五六七八九十两半百千]")
_ENUMERATED = re.compile(r"^\s*(?:\([一二三四五六七八九十]+\)|（[一二三四五六七八九十]+）)")
_OUTLINE = re.compile(r"^\s*((?:[一二三四五六七八九十]+、|\([一二三四五六七八九十]+\)|（[一二三四五六七八九十]+）|\d+[.．、]))\s*([^。，,；;:：\n]{0,24})")


@dataclass
class Evidence:
    """A retrieved passage with its text and document: what a citation is made of."""

    hit: Hit
    chunk: ChunkText
    document: StoredDocument


@dataclass
class Layer:
    """A second rule that speaks to the same point (a local rule beside a national one): stated after the main one."""

    lead: str  # 《山东省人口与计划生育条例》第二十五条规定
    source: str
    article: str
    excerpt: str
    rank: int  # its citation's rank


@dataclass
class Draft:
    """A channel-neutral answer."""

    answered: bool
    confidence: float
    lead: str = ""  # 根据《…》第十八条
    source: str = ""  # 《失业保险条例》第十八条: the answer's source, named as a citizen reads it
    article: str = ""  # the article / outline item of the first citation the excerpt comes from (第十八条)
    excerpt: str = ""  # the quoted sentences (or the FAQ's curated answer)
    citations: list[Citation] = field(default_factory=list)
    faq: FaqEntry | None = None
    notice: str = ""  # e.g. that the cited version is no longer in force
    department: str | None = None  # who to contact on a refusal, when the question names it
    generated: bool = False  # the text came from the generative mode
    layers: list[Layer] = field(default_factory=list)  # further rules on the same point (national + local)
    suggested: bool = False  # not answered, but the candidates may help (status SUGGEST)
    candidates: list[Citation] = field(default_factory=list)  # not answered: the best articles, with `highlight`
    related: list[Citation] = field(default_factory=list)  # an answer's other passages: not its sources

    @property
    def status(self) -> AnswerStatus:
        if self.answered:
            return AnswerStatus.ANSWER
        return AnswerStatus.SUGGEST if self.suggested and self.candidates else AnswerStatus.NONE


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.findall(text) if s.strip()]


def document_url(settings: Settings, doc_id: str, anchor: str | None) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/documents/{doc_id}" + (f"#{anchor}" if anchor else "")


def display_date(doc: StoredDocument) -> str | None:
    d = doc.meta.published_date or doc.meta.version_date or doc.meta.written_date
    return d.isoformat() if d else None


def document_citation(settings: Settings, rank: int, ev: Evidence, article: str | None = None,
                      highlight: str | None = None) -> Citation:
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
        highlight=highlight,
    )


def highlight(chunk: ChunkText, words: list[str], idf: Callable[[str], float]) -> tuple[str, str]:
    """(article label, sentence): the passage's sentence that says most of the question (the first on a tie), and
    the article it belongs to."""
    sentences = split_sentences(chunk.text)
    if not sentences:
        return chunk.section_path, chunk.text.strip()
    scores, _ = _best_sentence(sentences, words, idf)
    # A heading ("三、围绕重点工作,更好发挥政务公开功能作用") restates the section's topic, so it shares the question's
    # topic words and says nothing; the suggestion shows it as its section already. It is marked only when the
    # passage has nothing else.
    said = [i for i, sentence in enumerate(sentences) if not is_heading(sentence)] or list(range(len(sentences)))
    best = max(said, key=lambda i: (scores[i], -i))
    return article_label(chunk, best, sentences), _strip_label(sentences[best]) or sentences[best].strip()


def is_heading(sentence: str) -> bool:
    """An outline or chapter heading standing as its own line: numbered (三、 / (一) / 1. / 第二章), short, and not a
    sentence (no 。；！？ at its end)."""
    text = sentence.strip()
    return (len(text) <= 40 and not text.endswith(("。", "；", ";", "！", "？", "!", "?"))
            and bool(_OUTLINE.match(text) or _CHAPTER.match(text)))


def suggestions(settings: Settings, evidence: list[Evidence], words: list[str], idf: Callable[[str], float],
                limit: int = 3) -> list[Citation]:
    """Up to `limit` articles, best first, one citation each (a passage holding several articles is cited at the
    one its highlighted sentence belongs to; the same article twice is cited once)."""
    out: list[Citation] = []
    seen: set[tuple[str, str]] = set()
    for ev in evidence:
        label, sentence = highlight(ev.chunk, words, idf)
        key = (ev.document.doc_id, label)
        if key in seen:
            continue
        seen.add(key)
        out.append(document_citation(settings, len(out) + 1, ev, article=label, highlight=sentence))
        if len(out) == limit:
            break
    return out


def place_of_rule(doc: StoredDocument, asked: str | None) -> str:
    """Whose rule it is, when the citizen named no place and the title does not say (济南市): else ""."""
    region = doc.meta.region
    if asked or not region or region == "全国":
        return ""
    name = gazetteer().full_name(region)
    return "" if region in doc.meta.title else name


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
         need_quantity: bool = False, excerpt_chars: int = ComposeConfig.excerpt_chars) -> tuple[str, str]:
    """(label, excerpt): the sentences of the passage that answer, in reading order. With
    `need_quantity`, a sentence that states no quantity counts half when choosing the one to quote."""
    sentences = split_sentences(chunk.text)
    if not sentences:
        return chunk.section_path, chunk.text.strip()
    scores, best = _best_sentence(sentences, query_tokens, idf, need_quantity)
    chosen = {best}

    def room() -> int:
        return excerpt_chars - sum(len(sentences[i]) for i in chosen)

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
    excerpt = "".join(_strip_label(s) for s in ordered)
    if len(excerpt) > excerpt_chars + 80:
        excerpt = excerpt[:excerpt_chars].rstrip() + "……"
    return label, excerpt


def _best_sentence(sentences: list[str], words: list[str], idf: Callable[[str], float],
                   need_quantity: bool = False) -> tuple[list[float], int]:
    """Each sentence's coverage of the question and the best one (the first on a tie); with `need_quantity`, a
    sentence that states no quantity counts half."""
    scores = [coverage(words, s, idf) for s in sentences]
    if need_quantity:
        scores = [sc if states_quantity(s) else sc * 0.5 for sc, s in zip(scores, sentences)]
    return scores, max(range(len(sentences)), key=lambda i: (scores[i], -i))


def _covered(tokens: list[str], text: str) -> set[str]:
    folded = fold(text).lower()
    return {t for t in tokens if t in folded}


def _strip_label(sentence: str) -> str:
    """Drop the 第十八条 prefix (the lead names the article) and stray whitespace."""
    return _ARTICLE.sub("", sentence, count=1).strip()


def best_sentence_coverage(chunk: ChunkText, words: list[str], idf: Callable[[str], float]) -> float:
    return max((coverage(words, s, idf) for s in split_sentences(chunk.text)), default=0.0)


def quote_first(evidence: list[Evidence], words: list[str], idf: Callable[[str], float],
                need_quantity: bool = False, config: ComposeConfig = ComposeConfig()) -> list[Evidence] | None:
    """Move to the front the passage among the top `quote_candidates` whose best sentence says clearly more of the
    question (by `quote_margin`) than the top passage's: of two neighbouring articles the one that states
    "职工有下列情形之一的，应当认定为工伤" answers "哪些情况应当认定为工伤", not "…不得认定为工伤". With
    `need_quantity` only passages that state a quantity qualify, and None means none of them does (nothing to
    quote). The quoted passage is always citation [1]."""
    top = evidence[: config.quote_candidates]
    allowed = [i for i, ev in enumerate(top) if not need_quantity or states_quantity(ev.chunk.text)]
    if not allowed:
        return None
    scores = {i: best_sentence_coverage(top[i].chunk, words, idf) for i in allowed}
    best = max(allowed, key=lambda i: (scores[i], -i))
    first = allowed[0]
    if best != first and scores[best] < scores[first] + config.quote_margin:
        best = first
    if best == 0:
        return evidence
    return [evidence[best]] + evidence[:best] + evidence[best + 1 :]


class AnswerComposer:
    """Evidence in, Draft out: extractive answers, FAQ answers and refusals."""

    def __init__(self, settings: Settings, config: ComposeConfig | None = None,
                 confidence: ConfidenceModel | None = None):
        self.settings = settings
        self.config = config or ComposeConfig()
        self.confidence = confidence or ConfidenceModel()

    # over 60 lines: the extractive composition's steps in order (confidence, quote, outcome, layer, citations)
    def extractive(self, query: NormalizedQuery, evidence: list[Evidence], idf: Callable[[str], float],
                   best_dense: float = math.nan, judged: float | None = None, threshold: float | None = None,
                   layer: int | None = None, suggest_threshold: float | None = None) -> Draft:
        """`best_dense`: the highest cosine between the question and any allowed passage (Retrieved.best_dense).
        `judged`: the learned judge's confidence that evidence[0] answers (the judge ordered the evidence); then
        neither the two-feature confidence nor the quote reordering and quantity cap apply, unless configured.
        `layer`: the index of a passage of another level of government on the same point (see qa_service.layers),
        stated after the main one and cited second. Below `threshold` and at or above `suggest_threshold` the draft
        suggests the best articles (status SUGGEST); below it nothing relevant was found (NONE)."""
        threshold = self.settings.refusal_threshold if threshold is None else threshold
        suggest_threshold = self.settings.suggest_threshold if suggest_threshold is None else suggest_threshold
        if not evidence:
            return self.refusal(query, 0.0)
        top = evidence[0]
        words = query.content or query.tokens
        if judged is None:
            conf = self.confidence(*self.confidence_features(query, evidence, idf, best_dense))
        else:
            conf = judged
        # The asker's numbers (不满六个月) do not make a passage relevant, but they do pick the sentence to quote.
        numbers = [t for t in query.tokens if _NUMERAL.search(t) and t not in words]
        need_quantity = asks_quantity(query.original)
        if judged is None or self.config.judged_reorder:
            quotable = quote_first(evidence, words, idf, need_quantity, self.config)
            if quotable is None:  # asked for an amount, a period, a number: no passage near the top states one
                conf = min(conf, self.config.quantity_missing_confidence)
                need_quantity = False
                quotable = quote_first(evidence, words, idf, config=self.config)
            evidence = quotable
        elif need_quantity and not states_quantity(top.chunk.text):
            need_quantity = False
        if conf < threshold:
            return Draft(answered=False, confidence=conf, department=query.organization,
                         suggested=conf >= suggest_threshold,
                         candidates=suggestions(self.settings, evidence, words + numbers, idf, self.config.suggestions))
        top = evidence[0]
        label, excerpt = trim(top.chunk, words + numbers, idf, need_quantity, self.config.excerpt_chars)
        layers: list[Layer] = []
        layer_ev = evidence[layer] if layer is not None and 0 < layer < len(evidence) else None
        if layer_ev is not None and layer_ev.chunk.row_id != top.chunk.row_id:
            evidence = [top, layer_ev] + [ev for ev in evidence[1:] if ev is not layer_ev]
            l_label, l_excerpt = trim(layer_ev.chunk, words + numbers, idf, need_quantity,
                                                self.config.excerpt_chars)
            name = f"《{layer_ev.document.meta.title}》{l_label}"
            layers.append(Layer(lead=f"{name}规定", source=name, article=l_label, excerpt=l_excerpt, rank=2))
        # Only what the answer quotes (and the layer it states) is a source; the other passages are related.
        sources = 1 + len(layers)
        citations = [document_citation(self.settings, i + 1, ev, article=label if i == 0 else
                                       (layers[0].article if layers and i == 1 else None))
                     for i, ev in enumerate(evidence)]
        place = place_of_rule(top.document, query.region)
        draft = Draft(
            answered=True,
            confidence=conf,
            lead=f"根据{place}《{top.document.meta.title}》{label}",
            source="、".join([f"《{top.document.meta.title}》{label}", *(x.source for x in layers)]),
            article=label,
            excerpt=excerpt,
            citations=citations[:sources],
            notice=validity_notice(top.document),
            layers=layers,
            related=citations[sources:],
        )
        return draft

    def confidence_features(self, query: NormalizedQuery, evidence: list[Evidence], idf: Callable[[str], float],
                            best_dense: float = math.nan) -> tuple[float, float]:
        """(best cosine, coverage): what the two-feature confidence is computed from."""
        words = query.content or query.tokens
        cov = max(coverage(words, ev.chunk.embed_text, idf) for ev in evidence[: self.config.coverage_passages])
        return (best_dense if not math.isnan(best_dense) else evidence[0].hit.dense), cov

    def from_faq(self, entry: FaqEntry, score: float, faq_citation: Citation, sources: list[Evidence]) -> Draft:
        citations = [faq_citation] + [document_citation(self.settings, i + 2, ev) for i, ev in enumerate(sources)]
        return Draft(
            answered=True,
            confidence=round(min(1.0, max(0.0, score)), 4),
            lead="",
            excerpt=entry.answer.strip(),
            source="、".join(f"《{t}》" for t in entry.source_titles) + "、".join(entry.source_articles[:1]),
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


def suggest_text(settings: Settings) -> str:
    """What a `suggest` outcome says before its articles (issue 21)."""
    return f"没有找到确切的答复，以下规定可能与您的问题有关，请以原文为准，或拨打{settings.hotline_number}。"


def refusal_text(settings: Settings, department: str | None) -> str:
    where = f"，或联系{department}" if department else "或联系相关主管部门"
    return (
        f"抱歉，知识库中暂未找到能够回答这个问题的政策依据，无法给出可靠答复。"
        f"建议拨打{settings.hotline_number}热线咨询{where}。"
    )
