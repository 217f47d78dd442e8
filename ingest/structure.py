"""Stage 4 of ingest: split a document body into `Section`s in reading order, each with a heading path and anchor.

    from ingest.structure import parse_sections
    sections = parse_sections(body, meta)
    sections[16].path, sections[16].anchor  # (["第四章 失业保险待遇", "第十七条"], "a-17")

Two shapes are recognised from the text itself:
- articles (法律、法规、规章): 第X编 / 第X分编 / 第X章 / 第X节 headings (Markdown `## 第一章 总则` or plain lines),
  unnumbered group titles (a short unpunctuated line right before an article, e.g. "一般规定") and 第X条 articles;
  an article runs until the next 第X条 at a line start and keeps its （一）… items.
- outlines (政务公开方案 and other 公文): 一、 / （一） / 1. (also 1、 and （1）), half- or full-width brackets.
  Levels one and two enter the path with their heading text cut short (up to the first 。 or 20 characters);
  numbered items enter it by their number ("3."). A bare heading line (a heading directly followed by its
  first sub-heading) is carried into that child's text instead of becoming a one-line section.
Text before the first heading becomes a section with path ["正文"]. Anchors: "a-17" for 第十七条 ("a-10-1" for
第十条之一), "s-<n>" (n = 1-based section ordinal) for everything else; unique within the document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge_base.models import DocumentMeta, Section
from knowledge_base.text import anchor_for, cn_to_int

PREAMBLE = "正文"
HEADING_CHARS = 20

_NUM = "零〇一二三四五六七八九十百千两"
_ARTICLE = re.compile(rf"^(第([{_NUM}\d]+)条(?:之([{_NUM}\d]+))?)(?:\s+|$)")
_DIVISION = re.compile(rf"^(第[{_NUM}\d]+(?:分编|编|章|节))(?:\s+(.*))?$")
_DIVISION_LEVEL = {"编": 1, "分编": 2, "章": 3, "节": 4}
_NAMELESS_DIVISION = re.compile(rf"第[{_NUM}\d]+(?:分编|编|章|节)")
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.+?)\s*#*$")

# Outline markers, most significant first. Level 0 = 第X部分/第X章 style divisions in a 公文.
_OUTLINE = [
    (0, re.compile(rf"^第[{_NUM}\d]+(?:部分|章|节)(?:\s|$)")),
    (1, re.compile(r"^[一二三四五六七八九十]{1,3}、")),
    (2, re.compile(r"^[（(][一二三四五六七八九十]{1,3}[)）]")),
    (3, re.compile(r"^\d{1,2}[.．、](?!\d)")),
    (4, re.compile(r"^[（(]\d{1,2}[)）]")),
]
_NUMBER_ONLY_LEVELS = {3, 4}
_OUTLINE_ITEM = re.compile(r"^([一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十\d]{1,3}[)）])")
_ARTICLES_NEEDED = 2


def parse_sections(body: str, meta: DocumentMeta) -> list[Section]:
    """Sections of `body`: articles when the text has 第X条 articles, otherwise the 一、/（一）/1. outline.

        parse_sections("第一条 为了…\\n第二条 本条例…", meta)  # [Section(["第一条"], "第一条 为了…", "a-1"), …]
    """
    lines = [line.strip() for line in body.split("\n")]
    if sum(1 for line in lines if _ARTICLE.match(line)) >= _ARTICLES_NEEDED:
        raw = _article_sections(lines)
    else:
        raw = _outline_sections(lines)
    return _with_anchors(raw)


@dataclass
class _Draft:
    path: list[str]
    lines: list[str] = field(default_factory=list)
    article: tuple[int, int | None] | None = None  # (number, 之-number) for 第X条(之Y)


# ------------------------------------------------------------------------------------------------ articles


def _article_sections(lines: list[str]) -> list[_Draft]:
    stack: list[tuple[int, str]] = []  # (level, label) of the enclosing 编/章/节 headings
    drafts: list[_Draft] = []
    current: _Draft | None = None

    def flush() -> None:
        nonlocal current
        if current is not None and any(current.lines):
            drafts.append(current)
        current = None

    content = [line for line in lines if line]
    for i, line in enumerate(content):
        heading = _division_heading(line)
        if heading is None and i + 1 < len(content) and _is_untitled_heading(line, content[i + 1]):
            if stack and i > 0 and _NAMELESS_DIVISION.fullmatch(stack[-1][1]) and _division_heading(content[i - 1]):
                # "## 第一章" / "总则" on two lines: the name completes the chapter heading
                stack[-1] = (stack[-1][0], f"{stack[-1][1]} {line}")
                continue
            heading = (5, line)
        if heading is not None:
            flush()
            level, label = heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, label))
            continue
        m = _ARTICLE.match(line)
        if m:
            flush()
            number = cn_to_int(m.group(2))
            sub = cn_to_int(m.group(3)) if m.group(3) else None
            current = _Draft([label for _, label in stack] + [m.group(1)], [line], (number, sub))
            continue
        if current is None:  # text before the first article of a division (or of the document)
            current = _Draft([label for _, label in stack] or [PREAMBLE])
        current.lines.append(line)
    flush()
    return drafts


def _is_untitled_heading(line: str, next_line: str) -> bool:
    """A short unpunctuated line right before an article: a group title such as "一般规定" or "业主大会"."""
    return (
        len(line) <= 20
        and bool(re.fullmatch(r"[\u4e00-\u9fff、（）()]+", line))  # a name: no formula, number or sentence
        and not _ARTICLE.match(line)
        and not _OUTLINE_ITEM.match(line)
        and bool(_ARTICLE.match(next_line))
    )


def _division_heading(line: str) -> tuple[int, str] | None:
    """(level, label) for 编/章/节 headings and other Markdown headings; None for ordinary lines."""
    md = _MD_HEADING.match(line)
    text = md.group(2) if md else line
    if md and len(md.group(1)) == 1 and not _DIVISION.match(text):
        return None  # "# 标题" is the document title, not a block heading
    m = _DIVISION.match(text)
    if m and (md or (len(text) <= 30 and not re.search(r"[。；;，,]", text))):
        kind = re.sub(rf"^第[{_NUM}\d]+", "", m.group(1))
        name = re.sub(r"\s+", "", m.group(2) or "")  # "总  则" is spaced for print layout only
        return _DIVISION_LEVEL[kind], f"{m.group(1)} {name}".strip()
    if md:  # "## 附件", "## 附录": a top-level block of its own, outside any 编/章
        return 1, re.sub(r"\s+", " ", text)
    return None


# ------------------------------------------------------------------------------------------------ outlines


def _outline_sections(lines: list[str]) -> list[_Draft]:
    stack: list[tuple[int, str]] = []
    drafts: list[_Draft] = []
    current: _Draft | None = None
    current_level: int | None = None  # outline level of the heading that opened `current`
    carry: list[str] = []  # bare heading lines waiting for their first child

    def flush(next_level: int | None) -> None:
        nonlocal current, carry
        if current is None:
            return
        bare = current_level is not None and len(current.lines) == len(carry) + 1
        if bare and next_level is not None and next_level > current_level:
            carry = current.lines  # heading with no text of its own, directly followed by its child
        else:
            drafts.append(current)
            carry = []
        current = None

    for line in lines:
        if not line:
            continue
        md = _MD_HEADING.match(line)
        text = md.group(2) if md else line
        level = _outline_level(text)
        if level is None and md and len(md.group(1)) > 1:  # "# 标题" is the title: it stays in the preamble
            level = 0
        if level is None:
            if current is None:
                current = _Draft([PREAMBLE])
                current_level = None
            current.lines.append(line)
            continue
        flush(level)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, _path_label(text, level)))
        current = _Draft([label for _, label in stack], carry + [line])
        current_level = level
    flush(None)
    return drafts


def _outline_level(text: str) -> int | None:
    for level, pattern in _OUTLINE:
        if pattern.match(text):
            return level
    return None


def _path_label(text: str, level: int) -> str:
    """Short label for the path: "3." for numbered items, else the heading up to its first 。 (≤ 20 chars)."""
    if level in _NUMBER_ONLY_LEVELS:
        return _OUTLINE[level][1].match(text).group(0)
    head = re.split(r"[。；;：:！？]", text, maxsplit=1)[0].strip()
    return head if len(head) <= HEADING_CHARS else head[:HEADING_CHARS] + "…"


# ------------------------------------------------------------------------------------------------ anchors


def _with_anchors(drafts: list[_Draft]) -> list[Section]:
    sections: list[Section] = []
    used: set[str] = set()
    for n, draft in enumerate(drafts, start=1):
        anchor = anchor_for(*draft.article) if draft.article else f"s-{n}"
        base, k = anchor, 2
        while anchor in used:  # e.g. an annex that numbers its own articles again
            anchor, k = f"{base}-{k}", k + 1
        used.add(anchor)
        sections.append(Section(path=draft.path, text="\n".join(draft.lines), anchor=anchor))
    return sections
