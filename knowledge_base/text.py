"""Text normalization and tokenization shared by indexing and querying, so both sides match.

    fold("請問失業保險金能領多久？１２個月")  # -> "请问失业保险金能领多久?12个月"
    tokenize("失业保险金能领多久")          # -> ["失业", "保险", "保险金", "失业保险金", "领", "多久"]
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import jieba

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
    import opencc

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
