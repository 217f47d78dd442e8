"""One retrieval, three renderings: the same Draft as a web answer, a hotline script or a new-media post.

    answer = render(draft, channel="hotline", settings=settings, query_id="…", related=["春节假期几天"])
    answer.script.answer   # the one sentence an operator reads out first

- web: a short answer with [1] markers; the citation list carries the links to the cited sections.
- hotline: `answer` is one sentence; `script` is a HotlineScript (opening, answer, key_points, sources,
  related_questions, closing, plus `notice` when the cited rule is not in force and `suggestion` on a refusal).
- newmedia: plain text, no markup or markers, at most 300 characters including a source line and a link.
"""
from __future__ import annotations

import re

from dataclasses import replace

from knowledge_base.models import Answer, AnswerStatus, ChannelName, Citation, HotlineScript
from knowledge_base.safety import ScreenResult
from knowledge_base.settings import Settings
from knowledge_base.text import ARTICLE_LABEL

from .compose import Draft, refusal_text, split_sentences, suggest_text

CHANNELS = tuple(c.value for c in ChannelName)
NEWMEDIA_LIMIT = 300
_MARKER = re.compile(r"\[\d+\]")
_MARKUP = re.compile(r"[*_`#>|<\[\]{}]")


def render(draft: Draft, channel: ChannelName | str, settings: Settings, query_id: str, related: list[str]) -> Answer:
    """`citations`: what an answer quotes or layers; `related`: its other passages (unnumbered); `suggestions`: a
    `suggest` outcome's articles. The hotline console always gets the ranked candidates (operators are experts):
    on `none` they come as `related`, marked unconfirmed by the console."""
    channel = ChannelName.parse(channel)
    status = draft.status
    citations = draft.citations if draft.answered else []
    text = _RENDERERS[channel](draft, settings)
    others = draft.related if draft.answered else []
    if channel is ChannelName.HOTLINE and status is AnswerStatus.NONE:
        others = draft.candidates or [*draft.citations, *draft.related]  # a follow-up answer vetted out keeps its own
    return Answer(
        query_id=query_id,
        answered=draft.answered,
        answer=text,
        confidence=round(float(draft.confidence), 4),
        channel=channel.value,
        faq_id=draft.faq.faq_id if (draft.faq and draft.answered) else None,
        citations=citations,
        related_questions=list(related),
        script=hotline_script(draft, settings, related) if channel is ChannelName.HOTLINE else None,
        status=status,
        suggestions=list(draft.candidates) if status is AnswerStatus.SUGGEST else [],
        related=list(others),
    )


def blocked_text(settings: Settings) -> str:
    return settings.blocked_reply.replace("{hotline}", settings.hotline_number)


def blocked_answer(blocked: ScreenResult, channel: ChannelName | str, settings: Settings, query_id: str) -> Answer:
    """Content safety's fixed reply (the same words on every channel, never anything from the knowledge base); the
    hotline script tells the operator why and how to go on."""
    channel = ChannelName.parse(channel)
    text = blocked_text(settings)
    script = None
    if channel is ChannelName.HOTLINE:
        script = HotlineScript(
            opening="您好，",
            answer=text,
            key_points=[],
            sources=[],
            related_questions=[],
            suggestion=f"来电内容涉及“{blocked.label}”，系统不予作答。请按话务规范文明引导来电人说明具体诉求；"
                       "如反映违法犯罪线索，按流程登记工单转有关部门。",
            closing=f"感谢您的来电，如有其他问题请再拨打{settings.hotline_number}。",
        )
    return Answer(
        query_id=query_id,
        answered=False,
        answer=plain(text)[:NEWMEDIA_LIMIT] if channel is ChannelName.NEWMEDIA else text,
        confidence=0.0,
        channel=channel.value,
        faq_id=None,
        citations=[],
        script=script,
        blocked=blocked.category,
        status=AnswerStatus.NONE,
    )


def body(draft: Draft, markers: bool = False) -> str:
    """The answer: 根据《…》第十八条：…… (then 另外，《…》第X条规定：…… for each further rule), or the curated
    FAQ answer; with `markers`, [n] after each rule's text."""
    if not draft.lead:
        return draft.excerpt
    text = f"{draft.lead}：{draft.excerpt}" + ("[1]" if markers else "")
    for layer in draft.layers:
        text += f"另外，{layer.lead}：{layer.excerpt}" + (f"[{layer.rank}]" if markers else "")
    return text


def suggestion_line(c: Citation) -> str:
    """《失业保险条例》第十七条：累计缴费满1年不足5年的，领取期限最长为12个月 — one suggested article, as text."""
    return f"{_source_name(c)}：{c.highlight}" if c.highlight else _source_name(c)


def _web(draft: Draft, settings: Settings) -> str:
    if draft.status is AnswerStatus.SUGGEST:
        return suggest_text(settings)  # the widget lists the suggestions, their highlights marked
    if not draft.answered:
        return refusal_text(settings, draft.department)
    if draft.generated:
        text = draft.excerpt
    elif draft.layers:
        text = body(draft, markers=True)
    else:
        text = f"{body(draft)}[1]"
        # An FAQ answer cites its entry [1] and its source articles [2]…
        if draft.faq and len(draft.citations) > 1:
            text += "（依据：" + "、".join(_source_name(c) + f"[{c.rank}]" for c in draft.citations[1:]) + "）"
    return text + (f"\n{draft.notice}" if draft.notice else "")


def _hotline_text(draft: Draft, settings: Settings) -> str:
    if draft.status is AnswerStatus.SUGGEST:
        return suggest_text(settings)
    return one_sentence(draft) if draft.answered else refusal_text(settings, draft.department)


def one_sentence(draft: Draft) -> str:
    text = _MARKER.sub("", draft.excerpt)
    first = split_sentences(text)
    sentence = first[0].strip() if first else text.strip()
    sentence = sentence.rstrip("；;，,")
    if not sentence.endswith(("。", "！", "？")):
        sentence += "。"
    out = f"{draft.lead}，{sentence}" if draft.lead else sentence
    for layer in draft.layers:
        extra = split_sentences(_MARKER.sub("", layer.excerpt))
        more = (extra[0].strip() if extra else layer.excerpt.strip()).rstrip("；;，,")
        out += f"另外，{layer.lead}，{more}" + ("" if more.endswith(("。", "！", "？")) else "。")
    return out


def hotline_script(draft: Draft, settings: Settings, related: list[str]) -> HotlineScript:
    if draft.status is AnswerStatus.SUGGEST:
        return HotlineScript(
            opening="您好，关于您咨询的问题：",
            answer="暂未找到确切的答复，以下规定可能与您的问题有关，具体以原文为准。",
            key_points=[suggestion_line(c) for c in draft.candidates],
            sources=[_source_line(c) for c in draft.candidates],
            related_questions=list(related),
            suggestion="系统没有把握：请核对原文后再答复；不能确认时，如实告知来电人并按流程登记工单转相关部门办理。",
            closing=f"感谢您的来电，如有其他问题请再拨打{settings.hotline_number}。",
        )
    if not draft.answered:
        return HotlineScript(
            opening="您好，关于您咨询的问题：",
            answer="知识库中暂未找到可以作答的政策依据。",
            key_points=[],
            sources=[],
            related_questions=list(related),
            suggestion=(
                f"请如实告知来电人暂无明确依据，按流程登记工单转{draft.department}办理。"
                if draft.department
                else "请如实告知来电人暂无明确依据，按流程登记工单转相关部门办理，切勿自行答复。"
            ),
            closing=f"感谢您的来电，如有其他问题请再拨打{settings.hotline_number}。",
        )
    points = script_points(draft)
    return HotlineScript(
        opening="您好，关于您咨询的问题：",
        answer=one_sentence(draft),
        key_points=points,
        sources=[_source_line(c, draft.article if i == 0 else None) for i, c in enumerate(draft.citations[:3])],
        related_questions=list(related),
        closing="以上内容以文件原文为准，如需原文可登录政府网站查阅。",
        notice=draft.notice or None,
    )


def citation_name(c: Citation) -> str:
    """How a citation is named to a citizen: 《失业保险条例》第十七条, or 常见问题：… for a curated FAQ entry (an FAQ
    is not a document: its question is never put in 书名号)."""
    return f"常见问题：{c.title}" if c.kind == "faq" else _source_name(c)


def script_points(draft: Draft) -> list[str]:
    """What the operator reads out, sentence by sentence: every sentence each quoted rule's excerpt holds (the main
    rule's, then each further rule's), never a first few; where the article quoted holds more than the excerpt,
    "还有N项，见原文" says so. A curated FAQ answer or a generated one is read out whole."""
    if not draft.lead:
        return _sentences(draft.excerpt)
    by_rank = {c.rank: c for c in draft.citations}
    rules = [(draft.excerpt, draft.article, by_rank.get(1))]
    rules += [(layer.excerpt, layer.article, by_rank.get(layer.rank)) for layer in draft.layers]
    points: list[str] = []
    for excerpt, article, citation in rules:
        quoted = _sentences(excerpt)
        points += quoted
        left = _unquoted(citation.quote, article, quoted) if citation and article else 0
        if left:
            points.append(f"《{citation.title}》{article}还有{left}项，见原文。")
    return points


def _sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in split_sentences(_MARKER.sub("", text))) if s]


def _unquoted(passage: str, article: str, quoted: list[str]) -> int:
    """How many sentences of `article` (第七条) in the cited passage the quote leaves out."""
    sentences = [s.strip() for s in split_sentences(passage) if s.strip()]
    inside, count = False, 0
    said = "".join(q.rstrip("…") for q in quoted)
    for sentence in sentences:
        label = ARTICLE_LABEL.match(sentence)
        if label:
            if inside:
                break  # the next article
            inside = label.group(1) == article
            sentence = sentence[label.end():]
        if inside and sentence and sentence not in said:
            count += 1
    return count


def _source_name(c: Citation) -> str:
    if c.kind == "faq":
        return "、".join(f"《{t}》" for t in c.source_titles) or f"常见问题：{c.title}"
    article = c.section.split(">")[-1].strip() if c.section else ""
    return f"《{c.title}》{article}"


def _source_line(c: Citation, article: str | None = None) -> str:
    """《失业保险条例》（国务院令第258号）第十七条 — what an operator cites on the phone."""
    if c.kind == "faq":
        sources = "、".join(f"《{t}》" for t in c.source_titles)
        return f"常见问题 {c.faq_id or ''}：{c.title}" + (f"（依据{sources}{c.section}）" if sources else "")
    number = f"（{c.doc_number}）" if c.doc_number else ""
    article = article or (c.section.split(">")[-1].strip() if c.section else "")
    validity = {"superseded": "（已修订）", "expired": "（已失效）"}.get(c.validity.value, "")
    return f"《{c.title}》{number}{article}{validity}"


def _newmedia(draft: Draft, settings: Settings) -> str:
    if draft.status is AnswerStatus.SUGGEST:
        top = draft.candidates[0]
        tail = f"参考：{plain(_source_name(top))}\n详见：{top.url}"
        return f"{fit(plain(suggest_text(settings)), NEWMEDIA_LIMIT - len(tail) - 1)}\n{tail}"
    if not draft.answered:
        text = refusal_text(settings, draft.department)
        return plain(text)[:NEWMEDIA_LIMIT]
    top = draft.citations[0] if draft.citations else None
    if draft.faq and draft.faq.short_answer:
        content = draft.faq.short_answer
    else:
        content = body(draft)
    content = plain(content)
    doc_cite = next((c for c in draft.citations if c.kind == "document"), top)
    source = "来源：" + plain(draft.source or _source_name(top)) if top else ""
    link = f"详见：{doc_cite.url}" if doc_cite and doc_cite.url else ""
    tail = "\n".join(x for x in (source, link) if x)
    room = NEWMEDIA_LIMIT - len(tail) - 1
    if room < 20:  # a very long link: keep the link, shorten the source line
        tail = link
        room = NEWMEDIA_LIMIT - len(tail) - 1
    return f"{fit(content, room)}\n{tail}" if tail else fit(content, NEWMEDIA_LIMIT)


def plain(text: str) -> str:
    """No markers, no markup characters, single spaces."""
    text = _MARKER.sub("", text)
    text = _MARKUP.sub("", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def fit(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a sentence end where possible."""
    if len(text) <= limit:
        return text
    out = ""
    for s in split_sentences(text):
        if len(out) + len(s) > limit - 1:
            break
        out += s
    if len(out) < limit // 2:
        out = text[: limit - 1]
    return out.rstrip("，,；;、") + "…"


_RENDERERS = {ChannelName.WEB: _web, ChannelName.HOTLINE: _hotline_text, ChannelName.NEWMEDIA: _newmedia}


# ---------------------------------------------------------------------- issue 10: clarifying choices
def choices_text(choices: list[str]) -> str:
    """您想了解的是：1. … 2. … 3. …"""
    return "您想了解的是：" + " ".join(f"{i}. {c}" for i, c in enumerate(choices, start=1))


def with_choices(answer: Answer, choices: list[str]) -> Answer:
    """Ask back instead of guessing: the answer becomes the numbered choices (web / new media: one line the widget
    turns into buttons; hotline: a script the operator reads out). Not an answer, so nothing is cited."""
    text = choices_text(choices)
    # Not an answer: the articles the choices come from are suggestions
    if not answer.suggestions:
        docs = [c for c in (*answer.citations, *answer.related) if c.kind == "document"][:3]
        answer.suggestions = [replace(c, rank=i) for i, c in enumerate(docs, start=1)]
    answer.status = AnswerStatus.SUGGEST if answer.suggestions else AnswerStatus.NONE
    answer.related = []
    answer.answered = False
    answer.citations = []
    answer.faq_id = None
    answer.choices = list(choices)
    answer.answer = plain(text)[:NEWMEDIA_LIMIT] if answer.channel == ChannelName.NEWMEDIA.value else text
    if answer.channel == ChannelName.HOTLINE.value:
        answer.script = HotlineScript(
            opening="您好，您咨询的问题涉及不同的政策，请问您想了解的是哪一项：",
            answer="；".join(f"第{_ORDINAL[i]}，{c}" for i, c in enumerate(choices)) + "。",
            key_points=list(choices),
            sources=[],
            related_questions=list(answer.related_questions),
            closing="请来电人说明后，按所选事项再次查询作答。",
        )
    return answer


_ORDINAL = "一二三四五六七八九"


def understood_line(answer: Answer) -> str:
    """您是问：… — how a follow-up was understood, shown before the answer (chat replies, new media)."""
    return f"您是问：{answer.understood_question}" if answer.understood_question else ""
