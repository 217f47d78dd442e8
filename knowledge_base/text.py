"""Text normalization and tokenization shared by indexing and querying, so both sides match.

    fold("請問失業保險金能領多久？１２個月")  # -> "请问失业保险金能领多久?12个月"
    tokenize("失业保险金能领多久")          # -> ["失业", "保险", "保险金", "失业保险金", "领", "多久"]
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import jieba
import opencc

jieba.setLogLevel(60)  # jieba prints its dictionary loading to stderr otherwise

# Function words that carry no retrieval signal; BM25's IDF would damp them anyway, but dropping them
# keeps colloquial questions ("我想问一下…怎么办呢") from matching on filler.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 等 吗 呢 啊 吧 呀 哦 嘛 我 你 他 她 它 我们 你们 请问 请 问 一下 想 想问 问一下 "
    "怎么 怎么样 怎样 什么 哪些 哪个 哪里 如何 多少 几 要 可以 能 能否 会 有 没有 个 这 那 这个 那个 就 都 也 还 "
    "被 把 对 由 为 以 之 其 该 并 从 向 给 让 上 下 中 里 后 前 时 吗？ 啥 咋 么 呗 不 没".split()
)
_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)


@lru_cache(maxsize=1)
def _opencc():
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _opencc().convert(text)


def fold(text: str) -> str:
    """Traditional → simplified, full-width → half-width (NFKC), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", to_simplified(text))
    return re.sub(r"\s+", " ", text).strip()


def tokenize(text: str) -> list[str]:
    """jieba search-mode tokens of the folded text, lowercased, without punctuation and stopwords."""
    out = []
    for tok in jieba.lcut_for_search(fold(text).lower()):
        tok = tok.strip()
        if not tok or tok in STOPWORDS or _PUNCT.match(tok):
            continue
        out.append(tok)
    return out


# ------------------------------------------------------------------------------------------------ numerals, articles
CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUM = "零〇一二三四五六七八九十百千两"
ARTICLE_LABEL = re.compile(rf"^(第([{_NUM}\d]+)条(?:之([{_NUM}\d]+))?)(?:\s+|$)")


def cn_to_int(text: str) -> int:
    """Chinese (or Arabic) numeral to int: "十七" → 17, "一百零二" → 102, "两千" → 2000, "23" → 23.

        cn_to_int("二十")  # 20
    """
    if text.isdigit():
        return int(text)
    total, section, digit = 0, 0, 0
    for ch in text:
        if ch in CN_DIGITS:
            digit = CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if unit == 10000:
                total += (section + digit) * unit
                section = 0
            else:
                section += (digit or 1) * unit  # "十七": an omitted leading 一
            digit = 0
    return total + section + digit


def anchor_for(number: int, sub: int | None = None) -> str:
    """The viewer's anchor of article `number` (之`sub`): a-17, a-10-1."""
    return f"a-{number}" + (f"-{sub}" if sub else "")


def article_anchor(label: str) -> str | None:
    """The anchor the viewer gives an article label: "第二十条" → "a-20", "第十条之一" → "a-10-1"; None otherwise."""
    m = ARTICLE_LABEL.match(label.strip())
    if not m:
        return None
    return anchor_for(cn_to_int(m.group(2)), cn_to_int(m.group(3)) if m.group(3) else None)


# ------------------------------------------------------------------------------------------------ coverage
UNKNOWN_WORD_IDF = 8.0  # a word the corpus never uses (股市, 摇号) weighs like the rarest words: it is what was asked


def word_weights(words: list[str], idf, unknown: float = UNKNOWN_WORD_IDF, floor: float = 0.0) -> list[float]:
    """The weight each (distinct) question word has in a coverage: its idf in the knowledge base, `unknown` for a
    word the corpus never uses, never below `floor`."""
    return [max(idf(w) or unknown, floor) if idf else max(unknown, floor) for w in words]


def coverage(words: list[str], text: str, idf, unknown: float = UNKNOWN_WORD_IDF, floor: float = 0.0) -> float:
    """Share of the question's idf mass whose words occur in `text` (folded): how much of the question it speaks to.
    The one definition used for passages (retrieval and confidence), sentences (the quote) and FAQ entries."""
    uniq = list(dict.fromkeys(words))
    if not uniq:
        return 0.0
    folded = fold(text).lower()
    weights = word_weights(uniq, idf, unknown, floor)
    total = sum(weights)
    return sum(w for t, w in zip(uniq, weights) if t in folded) / total if total else 0.0


# ------------------------------------------------------------------------------------------------ quantities
# A question that asks for a quantity (多少钱, 几天, 多久, 百分之几) is answered only by a passage that states one: a
# digit, or a Chinese numeral with a unit (三个月, 十五日, 二分之一); article and item numbers (第十条, （二）) do not
# count (see ComposeConfig.quantity_missing_confidence for the measurement).
_QUANTITY_ASKED = re.compile(r"多少|几[天个年月日次岁周分元倍项名小时级种号]|百分之几|多长时间|多久|多高|多大年龄|多大的|哪一天")
_QUANTITY = re.compile(
    r"[0-9０-９]|百分之|[一二三四五六七八九十百千万两半]+(?:分之|[个年月日天周岁元倍次分项名人号度米吨层户‰%]|小时|工作日|公里|平方)"
)
_NUMBERING = re.compile(r"第[一二三四五六七八九十百千零〇两\d]+[条款项章节编]|[（(][一二三四五六七八九十\d]+[)）]")


def asks_quantity(question: str) -> bool:
    return bool(_QUANTITY_ASKED.search(question))


def states_quantity(text: str) -> bool:
    return bool(_QUANTITY.search(_NUMBERING.sub("", text)))
