"""Query normalization: the first stage of answering, shared by every retrieval mode.

    normalizer = QueryNormalizer(organizations=["济南市司法局", "济南市财政局"])
    q = normalizer.run("請問濟南市司法局公積金交多少？")
    q.text, q.organization, q.region   # -> "济南市司法局住房公积金交多少?", "济南市司法局", "济南"

Steps: traditional → simplified and full-width → half-width (`knowledge_base.text.fold`), filler removal
(请问 / 我想问一下 / 你好 …), a small curated list of colloquial → official terms (公积金 → 住房公积金,
年假 → 年休假 …), then hints the retriever uses: the organization and the place the question names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import jieba

from knowledge_base.places import gazetteer, place_of
from knowledge_base.text import STOPWORDS, fold, tokenize

# Politeness and filler that carry no retrieval signal. Longest first, so 我想问一下 goes before 问一下.
FILLERS = sorted(
    [
        "请问一下", "请问", "我想问一下", "我想问问", "我想问", "想问一下", "想问问", "问一下", "我想咨询一下", "我想咨询",
        "想咨询一下", "咨询一下", "请教一下", "请教", "麻烦问一下", "麻烦问下", "麻烦您", "麻烦", "打扰一下", "打扰了",
        "你好", "您好", "哈喽", "在吗", "谢谢你", "谢谢您", "谢谢", "多谢", "我想了解一下", "想了解一下", "我想知道",
        "帮我查一下", "帮我查查", "帮忙查一下",
    ],
    key=len,
    reverse=True,
)
_FILLER_RE = re.compile("|".join(map(re.escape, FILLERS)))
_EDGE_PUNCT = re.compile(r"^[\s,.;:!?、，。；：！？~…]+|[\s,.;:!~…，。；：！～]+$")

# Colloquial → the wording the texts use. Each pattern is guarded so that text already in the official
# form is left alone (住房公积金 does not become 住房住房公积金). Kept small on purpose: each entry is a
# common citizen phrasing (gold questions, the FAQ's 相似问法) whose official term the texts use instead, and
# helps both BM25 (shared tokens) and the encoder. Order matters: 社保卡 before 社保, 老楼加装电梯 before 加装电梯.
SYNONYMS: list[tuple[str, str]] = [
    (r"(?<!住房)公积金", "住房公积金"),
    (r"年假", "年休假"),
    (r"失业金", "失业保险金"),
    (r"失业险", "失业保险"),
    (r"工伤险", "工伤保险"),
    (r"医保卡", "医疗保障凭证"),
    (r"看病", "就医"),
    (r"房子", "房屋"),
    (r"加班", "延长工作时间"),
    (r"交钱|收钱|要钱|花钱", "收取费用"),
    (r"社保卡", "社会保障卡"),
    (r"社保", "社会保险"),
    (r"医保", "医疗保险"),
    (r"低保", "最低生活保障"),
    (r"(?:老楼|旧楼|老旧小区|老小区)(?:加装|装|加|安装)电梯", "既有住宅增设电梯"),
    (r"加装电梯", "增设电梯"),
    (r"狗狗|狗", "犬"),
    (r"过年", "春节"),
    (r"五一劳动节|五一(?=假|放|节|小长假)", "劳动节"),
    (r"家暴", "家庭暴力"),
    (r"国庆(?!节)", "国庆节"),
    (r"欠薪|拖欠工钱|讨薪", "拖欠工资"),
    (r"退休金|(?<!基本)养老金", "基本养老金"),
    (r"拆迁", "房屋征收"),
    (r"暖气费|暖气", "供热"),
    (r"上访", "信访"),
    (r"(?<!政府|政务)信息公开", "政府信息公开"),
    (r"(哪些|什么|何种|啥)情况", r"\1情形"),  # the texts list conditions as 情形: 有下列情形之一的
]
_SYNONYMS = [(re.compile(p), r) for p, r in SYNONYMS]

# Words asking for an earlier version of a rule (修订前 / 旧版): then superseded versions may be cited.
_HISTORY_RE = re.compile(r"修订前|修改前|旧版|老版|原来的规定|以前的规定|之前的规定|历史版本|历次修订")

# Words that say what kind of answer is wanted, not what about: they never count as content.
QUESTION_WORDS = frozenset(
    "几 几天 几年 几个 几个月 几成 几户 几次 多久 多长 多长时间 长时间 时间 多少 多少天 多大 什么 怎么 怎么办 怎样 哪些 "
    "哪里 哪个 哪儿 谁 吗 时候 什么时候 何时 如何 是否 能否 可以 需要 要 能 有 是 呢 么 啥 由 会 咋 咋办 得 最 "
    "规定 问题 相关 请问 了解 咨询".split()
)
_SMALL_NUMBER = re.compile(r"[0-9一二三四五六七八九十两半百千]")
_NOT_WORD = re.compile(r"^\W+$")


def content_words(text: str) -> list[str]:
    """Distinct content words of a normalized question (jieba precise mode), without question words and the
    asker's small numbers (三年, 12): what the question is about, for coverage tests."""
    out = []
    for tok in jieba.lcut(text):
        tok = tok.strip().lower()
        if not tok or tok in QUESTION_WORDS or tok in STOPWORDS or _NOT_WORD.match(tok):
            continue
        if (len(tok) <= 3 and _SMALL_NUMBER.search(tok) and not tok.isdigit()) or (tok.isdigit() and len(tok) < 4):
            continue  # keep 12345 and years, drop 三年 / 12 / 十天
        out.append(tok)
    return list(dict.fromkeys(out))


_PLACE_PREFIX = re.compile(rf"^({'|'.join(map(re.escape, gazetteer().places))})(?:市|省)")


def short_org(name: str) -> str:
    """济南市司法局 → 济南司法局: citizens often drop 市/省."""
    return _PLACE_PREFIX.sub(r"\1", name)


@dataclass
class NormalizedQuery:
    original: str
    text: str  # folded, fillers removed, synonyms applied: what is embedded and tokenized
    tokens: list[str]  # jieba search-mode tokens, as the lexical index has them
    content: list[str]  # content words (precise mode), for coverage: what the question is about
    organization: str | None = None  # an organization the knowledge base knows and the question names
    region: str | None = None  # a place the question names (济南 / 淄博 / 台州 / 山东 …)
    wants_history: bool = False  # the question asks for an earlier version
    rewrites: list[str] = field(default_factory=list)  # the synonym rewrites applied, for logs and debugging


class QueryNormalizer:
    """Question in, NormalizedQuery out. `organizations` come from the knowledge base (publishers, titles)."""

    def __init__(self, organizations: list[str] | None = None):
        aliases: dict[str, str] = {}
        for org in organizations or []:
            org = fold(org).replace(" ", "")
            if len(org) < 3:
                continue
            aliases.setdefault(org, org)
            aliases.setdefault(short_org(org), org)
        # Longest alias first, so 济南市司法局 wins over a shorter 司法局-like name.
        self._aliases = sorted(aliases.items(), key=lambda kv: len(kv[0]), reverse=True)

    def run(self, question: str) -> NormalizedQuery:
        text = fold(question)
        text = _FILLER_RE.sub("", text)
        text = _EDGE_PUNCT.sub("", text).strip() or fold(question)
        rewrites = []
        for pattern, replacement in _SYNONYMS:
            new = pattern.sub(replacement, text)
            if new != text:
                rewrites.append(f"{pattern.pattern}→{replacement}")
                text = new
        compact = text.replace(" ", "")
        organization = next((org for alias, org in self._aliases if alias in compact), None)
        region = place_of(compact)
        return NormalizedQuery(
            original=question,
            text=text,
            tokens=tokenize(text),
            content=content_words(text),
            organization=organization,
            region=region,
            wants_history=bool(_HISTORY_RE.search(compact)),
            rewrites=rewrites,
        )
