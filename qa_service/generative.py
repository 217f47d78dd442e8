"""Optional generative mode: an OpenAI-compatible model (through LangChain's ChatOpenAI) writes the answer
from the numbered passages only, with [n] markers; the answer is checked before it is used.

    gen = GenerativeAnswerer(settings)            # settings.llm_base_url / llm_model / llm_api_key / llm_timeout
    draft = gen.run(question, evidence, extractive_draft) or extractive_draft

Checks, any failure → None (the caller keeps the extractive answer): the call returns within
`llm_timeout` without error; the text has at least one marker and every marker names a given passage;
each marked sentence shares most of its wording with the passages it cites; every number in the answer
occurs in a cited passage (a made-up deadline is the worst failure for a citizen).
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from knowledge_base.settings import Settings

from .compose import Draft, Evidence, split_sentences

log = logging.getLogger(__name__)

PASSAGES = 5
PASSAGE_CHARS = 600
MIN_SUPPORT = 0.5  # share of a sentence's character bigrams found in the passages it cites
_MARKER = re.compile(r"\[(\d+)\]")
_TRAILING = re.compile(r"([。！？；!?;])((?:\[\d+\])+)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CANNOT = re.compile(r"无法回答|不能回答|没有找到|未找到|无法确定|资料中没有|材料中没有")

SYSTEM_PROMPT = (
    "你是政府政策咨询助手。只能依据用户给出的编号资料回答，不得使用资料以外的知识。"
    "每句话后用[编号]标注依据，例如[1]；只能引用给出的编号。"
    "回答简洁（不超过150字），使用资料原文中的数字和期限。资料不足以回答时，只回答“资料中没有答案”。"
)


class GenerativeAnswerer:
    def __init__(self, settings: Settings):
        from langchain_openai import ChatOpenAI  # lazy: langchain_openai costs 0.8-0.9 s at start-up, only an LLM endpoint needs it

        if not settings.llm_base_url:
            raise ValueError("llm_base_url is not set")
        self.settings = settings
        self.llm = ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key or "not-needed",
            timeout=settings.llm_timeout,
            max_retries=0,
            temperature=0,
        )

    def run(self, question: str, evidence: list[Evidence], extractive: Draft) -> Draft | None:
        passages = [ev.chunk.text[:PASSAGE_CHARS] for ev in evidence[:PASSAGES]]
        if not passages:
            return None
        numbered = "\n\n".join(
            f"[{i + 1}]《{ev.document.meta.title}》{ev.chunk.section_path}\n{p}"
            for i, (ev, p) in enumerate(zip(evidence, passages))
        )
        messages = [("system", SYSTEM_PROMPT), ("human", f"资料：\n{numbered}\n\n问题：{question}")]
        try:
            reply = self.llm.invoke(messages)
        except Exception as e:  # timeout, connection refused, HTTP error, bad payload
            log.warning("generative answer failed (%s); using the extractive answer", type(e).__name__)
            return None
        text = reply.content if isinstance(reply.content, str) else ""
        problem = check(text, passages)
        if problem:
            log.warning("generative answer rejected (%s); using the extractive answer", problem)
            return None
        return replace(extractive, lead="", excerpt=attach_markers(text.strip()), generated=True)


def check(text: str, passages: list[str]) -> str | None:
    """Why a generated answer cannot be used, or None when it is grounded in the passages."""
    text = (text or "").strip()
    if not text:
        return "empty answer"
    if _CANNOT.search(text):
        return "the model found no answer"
    markers = [int(m) for m in _MARKER.findall(text)]
    if not markers:
        return "no [n] markers"
    bad = sorted({m for m in markers if not 1 <= m <= len(passages)})
    if bad:
        return f"markers {bad} name no given passage"
    for sentence in split_sentences(attach_markers(text)):
        cited = [int(m) for m in _MARKER.findall(sentence)]
        plain = _MARKER.sub("", sentence).strip()
        if len(plain) < 4:
            continue
        # A sentence without a marker must still be supported by the passages as a whole.
        source = "".join(passages[m - 1] for m in cited) if cited else "".join(passages)
        grams = _bigrams(plain)
        if grams and len(grams & _bigrams(source)) / len(grams) < MIN_SUPPORT:
            return f"sentence not supported by its passages: {plain[:40]}"
    cited_text = "".join(passages[m - 1] for m in set(markers))
    for number in _NUMBER.findall(_MARKER.sub("", text)):
        if number not in cited_text:
            return f"number {number} does not occur in the cited passages"
    return None


def attach_markers(text: str) -> str:
    """Move markers written after a sentence end (……。[1]) inside it (……[1]。), so each sentence owns its markers."""
    return _TRAILING.sub(r"\2\1", text)


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if c.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:])}
