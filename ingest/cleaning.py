"""Stage 2 of ingest: strip web-site boilerplate and normalise whitespace, never touching real content.

    from ingest.cleaning import clean_text
    clean_text("首页 > 政务公开\\n一、总体要求\\n【打印本页】【关闭窗口】")  # "一、总体要求"
    clean_text("…方案。 一、总体要求 紧密围绕…(5,000 chars on one line)")  # split into paragraphs

What is removed: navigation/crumb lines (首页 > …, 无障碍浏览, 信息来源:… 浏览次数: 字体:【 分享:), 上一篇/下一篇,
打印本页/关闭窗口, 扫码… prompts, "Produced By …", page-number lines of PDFs, runs of "?" left where a
scraper lost characters, table-pipe debris ("| ||||||||"). What is normalised: line endings, \\u3000 and
no-break spaces (→ " "), zero-width characters, runs of spaces, 3+ blank lines. Full-width punctuation and
every other character of the text stay as printed.
"""
from __future__ import annotations

import re

# Whole lines that are site chrome. Each pattern is anchored and short-bounded so a real paragraph that
# merely mentions e.g. "关闭窗口" is never dropped.
_BOILERPLATE_LINES = [
    re.compile(r"^(当前位置[:：]\s*)?(首页|网站首页)\s*[>＞›»].{0,80}$"),
    re.compile(r"^(当前位置|您的位置|您现在的位置)[:：].{0,80}$"),
    re.compile(r"^(无障碍浏览|无障碍|长者模式|关怀版|简体版|繁體版|繁体版|English)(\s+\S{1,6}){0,4}$"),
    re.compile(r"^信息来源[:：].{0,60}(浏览次数|访问量|点击数|字体).*$"),
    re.compile(r"^(浏览次数|访问次数|点击数)[:：]?\s*\d*\s*$"),
    re.compile(r"^字体[:：]?\s*[【\[]?.{0,20}$"),
    re.compile(r"^(分享到?|收藏)[:：]?\s*$"),
    re.compile(r"^[•·]?\s*(上一篇|下一篇)[:：]?.{0,80}$"),
    re.compile(r"^[【\[]?(打印本页|打印|关闭窗口|关闭|返回顶部|保存本页)[】\]]?$"),
    re.compile(r"^扫(码|一扫|描二维码)(?=.{0,24}$).*(手机|浏览|本页|当前页|二维码|关注|分享)"),
    re.compile(r"^(用)?手机(扫码|扫描|浏览).{0,20}$"),
    re.compile(r"^(?i:Produced By)\b.*$"),
    re.compile(r"^[-—–]\s*\d{1,4}\s*[-—–]$"),  # PDF page numbers "- 3 -"
    re.compile(r"^第\s*\d+\s*页\s*(/|，|,)?\s*(共\s*\d+\s*页)?$"),
    re.compile(r"^[|｜\s]+$"),  # table-pipe debris
    re.compile(r"^[•·]\s*$"),  # an empty bullet left behind
]
# One alternation, so each line costs a single regex match.
_BOILERPLATE = re.compile("|".join(f"(?:{p.pattern})" for p in _BOILERPLATE_LINES))
# Fragments of chrome that share a line with content.
_INLINE_CHROME = re.compile(r"[【\[](打印本页|关闭窗口|打印|关闭|返回顶部)[】\]]")
_TRAILING_PIPES = re.compile(r"\s*[|｜](\s*[|｜]){2,}\s*$")
# A scraper turned characters it could not encode (e.g. full-width spaces used for layout) into "?":
# runs of two or more, or a lone "?" between spaces. A "?" attached to a word is kept (URLs, real text).
_QMARK_GARBAGE = re.compile(r"\?{2,}|(?<!\S)\?(?!\S)")

_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
_HSPACE = re.compile(r"[ \t\u3000\u00a0\u2002\u2003\u2009\u202f]+")

# Paragraph recovery in "giant lines" (a page flattened to one line, e.g. the Taizhou plan).
_GIANT_LINE = 400
_OUTLINE_MARK = r"(?:[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十]{1,3}[)）]|[（(]\d{1,2}[)）]|\d{1,2}[、.．](?!\d))"
_ARTICLE_MARK = r"第[一二三四五六七八九十百千零〇两\d]+条\s"
_BREAK_BEFORE = re.compile(rf"\s+(?={_OUTLINE_MARK}|{_ARTICLE_MARK})")
_BREAK_AFTER_SENTENCE = re.compile(r"(?<=[。；！？!?])\s+(?=\S)")
# "一、总体要求 紧密围绕…": a short heading glued to its paragraph by a space.
_HEADING_THEN_TEXT = re.compile(rf"^({_OUTLINE_MARK}[^\s。，,；;:：]{{1,20}})\s+(?=\S)")


def clean_text(text: str) -> str:
    """Remove boilerplate and normalise whitespace; paragraphs stay separated by line breaks.

        clean_text("一、总则\\u3000\\n\\n\\n\\n上一篇:无")  # "一、总则"
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ZERO_WIDTH.sub("", text)
    text = _QMARK_GARBAGE.sub("\n", text)  # the lost characters were layout breaks; newline restores them
    lines: list[str] = []
    for line in text.split("\n"):
        line = _HSPACE.sub(" ", line).strip()
        line = _TRAILING_PIPES.sub("", line)
        line = _INLINE_CHROME.sub("", line).strip()
        if not line:
            lines.append("")
            continue
        if _BOILERPLATE.match(line):
            continue
        lines.extend(_split_giant_line(line) if len(line) > _GIANT_LINE else [line])
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip("\n")


def _split_giant_line(line: str) -> list[str]:
    """Re-create paragraphs in a line whose breaks were flattened to spaces.

    Only applies when the line shows several such breaks (sentence end + space, or space + outline/article
    marker); a long paragraph written without spaces is left alone.
    """
    breaks = len(_BREAK_AFTER_SENTENCE.findall(line)) + len(_BREAK_BEFORE.findall(line))
    if breaks < 3:
        return [line]
    line = _BREAK_BEFORE.sub("\n", line)
    line = _BREAK_AFTER_SENTENCE.sub("\n", line)
    out: list[str] = []
    for part in line.split("\n"):
        part = part.strip()
        if not part:
            continue
        m = _HEADING_THEN_TEXT.match(part)
        if m:
            out.extend([m.group(1), part[m.end():]])
        else:
            out.append(part)
    return out
