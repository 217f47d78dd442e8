"""Structure (articles, outlines) and chunking of real corpus documents."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingest.chunking import Chunker, split_sentences
from ingest.parse import parse_document
from ingest.structure import parse_sections
from knowledge_base.models import Disclosure, DocumentMeta, DocType, ParsedDocument, Section

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
REGS = CORPUS / "national" / "行政法规"
PLANS = CORPUS / "plans"

SENTENCE_END = tuple("。！？；!?;") + tuple("”’\"」』）)】")

SAMPLE_DOCS = [
    *sorted(PLANS.glob("*.txt")),
    REGS / "失业保险条例(1999-01-22).md",
    REGS / "工伤保险条例(2010-12-20).md",
    REGS / "飞行基本规则(2007-10-18).md",  # articles run together on 2,000-character lines
    REGS / "矿产资源法实施细则(1994-03-26).md",  # one 900-character enumeration sentence
    REGS / "国务院关于口岸开放的若干规定(1985-09-18).md",  # no articles: 一、/（一）/1．outline
    CORPUS / "national" / "社会法" / "劳动合同法(2012-12-28).md",
    CORPUS / "local" / "山东" / "济南市农村公路条例(2014-09-26).md",
]


def _section(doc: ParsedDocument, anchor: str) -> Section:
    return next(s for s in doc.sections if s.anchor == anchor)


# ------------------------------------------------------------------------------------------------ structure


def test_regulation_article_is_its_own_section() -> None:
    doc = parse_document(REGS / "失业保险条例(1999-01-22).md")
    art17 = _section(doc, "a-17")
    assert art17.path == ["第三章 失业保险待遇", "第十七条"]
    assert art17.text.startswith("第十七条 失业人员失业前所在单位和本人按照规定累计缴费时间满1年不足5年的")
    assert "最长为24个月" in art17.text and "第十八条" not in art17.text
    # an article keeps its （一）… items
    art5 = _section(doc, "a-5")
    assert art5.text.split("\n")[-1] == "(四)依法纳入失业保险基金的其他资金。"
    assert len(doc.sections) == 33 and len({s.anchor for s in doc.sections}) == 33
    assert [s.path[0] for s in doc.sections[:1]] == ["第一章 总则"]


def test_articles_split_out_of_run_together_lines() -> None:
    doc = parse_document(REGS / "飞行基本规则(2007-10-18).md")
    art29 = _section(doc, "a-29")
    assert art29.path == ["第三章 飞行管制", "第二十九条"]
    assert art29.text.startswith("第二十九条 飞行管制的基本任务是：")
    assert "第三十条" not in art29.text


def test_sections_and_anchors_synthetic() -> None:
    body = "\n".join([
        "序言文字。", "## 第一编  总  则", "### 第一章 基本规定", "第一条 甲。", "（一）乙；", "第一条之一 丙。",
        "## 第二编 分则", "一般规定", "第二条 丁。", "## 第三编", "附则", "第三条 戊：", "（一）其他", "第四条 己。",
        "## 附件", "第一条 附件自有编号。",
    ])
    sections = parse_sections(body, DocumentMeta(title="测试法", doc_type=DocType.REGULATION))
    assert [(s.path, s.anchor) for s in sections] == [
        (["正文"], "s-1"),
        (["第一编 总则", "第一章 基本规定", "第一条"], "a-1"),
        (["第一编 总则", "第一章 基本规定", "第一条之一"], "a-1-1"),
        (["第二编 分则", "一般规定", "第二条"], "a-2"),  # an unnumbered group title before an article
        (["第三编 附则", "第三条"], "a-3"),  # heading number and name on two lines
        (["第三编 附则", "第四条"], "a-4"),
        (["附件", "第一条"], "a-1-2"),
    ]
    assert sections[1].text == "第一条 甲。\n（一）乙；"
    assert sections[4].text == "第三条 戊：\n（一）其他"  # an item is never taken for a group title


def test_plan_outline_paths() -> None:
    doc = parse_document(PLANS / "000_e71e79a35d633e9d.txt")
    paths = [s.path for s in doc.sections]
    assert paths[0] == ["正文"]
    assert ["二、重点任务", "(二)推进政策服务提质增效", "3."] in paths
    first_item = next(s for s in doc.sections if s.path == ["二、重点任务", "(一)推动重点领域主动公开", "1."])
    # the bare headings above the first item are carried into its text, not left as one-line sections
    assert first_item.text.startswith("二、重点任务\n(一)推动重点领域主动公开\n1.推进重大行政决策目录公开。")
    assert ["二、重点任务"] not in paths
    assert ["三、夯实工作基础", "(一)健全组织领导"] in paths  # heading text cut at its first 。


def test_outline_levels_full_width_and_long_headings() -> None:
    body = "前言。\n一、总体要求\n（一）坚持问题导向和目标导向相结合推动各项工作落地见效。正文\n1、第一项\n（1）细项\n2．第二项\n二、保障措施"
    sections = parse_sections(body, DocumentMeta(title="t"))
    assert [s.path for s in sections] == [
        ["正文"],
        ["一、总体要求", "（一）坚持问题导向和目标导向相结合推动各…", "1、", "（1）"],
        ["一、总体要求", "（一）坚持问题导向和目标导向相结合推动各…", "2．"],
        ["二、保障措施"],
    ]
    assert sections[1].text.startswith("一、总体要求\n（一）坚持问题导向")
    # a Markdown "# 标题" is the document title: it does not become a heading above every section
    md_sections = parse_sections("# 某方案\n说明。\n## 一、总体要求\n内容。", DocumentMeta(title="某方案"))
    assert [s.path for s in md_sections] == [["正文"], ["一、总体要求"]]


def test_taizhou_plan_has_outline_structure() -> None:
    doc = parse_document(PLANS / "001_e698f4235984d263.txt")
    paths = [" > ".join(s.path) for s in doc.sections]
    assert "二、主要任务 > (八)推进公开工作制度化标准化" in paths
    assert "三、公开程序 > (三)保密审查" in paths
    assert "四、保障措施 > (四)强化监督检查" in paths


# ------------------------------------------------------------------------------------------------ chunking


def test_work_injury_article_chunk() -> None:
    doc = parse_document(REGS / "工伤保险条例(2010-12-20).md")
    chunks = Chunker().run(doc, "gongshang")
    chunk = next(c for c in chunks if c.anchor == "a-17")
    assert chunk.section_path == "第三章 工伤认定 > 第十七条"
    assert chunk.text == _section(doc, "a-17").text
    assert chunk.embed_text == f"工伤保险条例\n第三章 工伤认定 > 第十七条\n{chunk.text}"
    assert [c.chunk_id for c in chunks] == [f"gongshang:{i}" for i in range(len(chunks))]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.doc_id == "gongshang" for c in chunks)


def test_plan_chunk_paths() -> None:
    doc = parse_document(PLANS / "000_e71e79a35d633e9d.txt")
    one_per_section = Chunker(min_chars=0).run(doc, "p")
    assert "二、重点任务 > (二)推进政策服务提质增效 > 3." in [c.section_path for c in one_per_section]
    shape = re.compile(r"二、[^>]+ > [（(][一二三][）)][^>]+ > \d\.(至\d\.)?")
    assert sum(1 for c in Chunker().run(doc, "p") if shape.fullmatch(c.section_path)) >= 4


@pytest.mark.parametrize("path", SAMPLE_DOCS, ids=lambda p: p.name)
def test_chunk_invariants_on_real_documents(path: Path) -> None:
    doc = parse_document(path)
    chunker = Chunker()
    chunks = chunker.run(doc, "d")
    assert chunks
    section_ends = [s.text.rstrip()[-20:] for s in doc.sections]
    section_texts = [s.text + "\n" for s in doc.sections]
    for chunk in chunks:
        assert re.search(r"\w", chunk.text), "junk chunk"
        assert chunk.text == chunk.text.strip()
        if len(chunk.text) > chunker.max_chars:
            # only one sentence that cannot be cut may be longer (with at most its heading line before it)
            sentences = sorted(split_sentences(chunk.text), key=len)
            assert len(sentences[-1]) > chunker.max_chars - 40, chunk.text[:60]
            assert all(len(s) <= 40 and "。" not in s for s in sentences[:-1]), chunk.text[:60]
        ends_sentence = chunk.text.endswith(SENTENCE_END)
        ends_section = any(chunk.text.endswith(end) for end in section_ends)
        ends_line = any(chunk.text[-20:] + "\n" in text for text in section_texts)  # a line break ends a sentence too
        assert ends_sentence or ends_section or ends_line, f"mid-sentence end: …{chunk.text[-30:]}"
        assert chunk.embed_text == f"{doc.meta.title}\n{chunk.section_path}\n{chunk.text}"
    # nothing is lost: every sentence of every section is in some chunk
    for section in doc.sections:
        for sentence in split_sentences(section.text):
            sentence = sentence.strip()
            if re.search(r"\w", sentence):
                assert any(sentence in c.text for c in chunks), sentence[:40]


def test_long_section_splits_at_sentence_ends_with_whole_sentence_overlap() -> None:
    sentences = [f"第{n}句话说明一项具体的政务公开要求并给出时限{n}。" for n in range(1, 31)]
    text = "第十条 " + "".join(sentences)
    chunker = Chunker(min_chars=50, max_chars=120, overlap=40)
    pieces = chunker.split(text)
    assert len(pieces) > 3
    assert all(len(p) <= 120 for p in pieces)
    assert all(p.endswith("。") for p in pieces)
    for prev, nxt in zip(pieces, pieces[1:]):
        last = split_sentences(prev)[-1]
        assert nxt.startswith(last), "the next piece repeats the previous piece's last sentence"
        overlap = len(last)
        assert overlap <= 40
        assert not nxt.startswith(prev)  # never the whole previous piece
    # every sentence appears, in order
    joined = "".join(pieces)
    positions = [joined.find(s) for s in sentences]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def test_split_sizes_are_balanced() -> None:
    text = "".join(f"这是第{n}个句子，用来检验切分的均衡性。" for n in range(40))  # ~780 chars
    pieces = Chunker(max_chars=600, overlap=80).split(text)
    assert len(pieces) == 2
    assert min(len(p) for p in pieces) > 300  # not 600 + a stub


def test_heading_line_moves_to_the_piece_it_introduces() -> None:
    text = "第九条 " + "说明文字。" * 20 + "\n（二）第二类\n" + "具体内容。" * 20
    pieces = Chunker(min_chars=50, max_chars=120, overlap=0).split(text)
    assert all(not p.endswith("（二）第二类") for p in pieces)
    assert any(p.startswith("（二）第二类\n具体内容。") for p in pieces)
    assert all(len(p) <= 120 for p in pieces)


def test_unsplittable_sentence_is_kept_whole() -> None:
    long_sentence = "、".join(f"矿种{n}" for n in range(200)) + "。"
    pieces = Chunker(max_chars=600).split("第一条 短句。" + long_sentence + "尾句。")
    assert long_sentence in pieces
    assert all(len(p) <= 600 or p == long_sentence for p in pieces)


def test_tiny_sections_merge_under_same_parent_only() -> None:
    meta = DocumentMeta(title="某条例")
    sections = [
        Section(["第一章 总则", "第一条"], "第一条 短。", "a-1"),
        Section(["第一章 总则", "第二条"], "第二条 也短。", "a-2"),
        Section(["第二章 附则", "第三条"], "第三条 另一章。", "a-3"),
        Section(["第二章 附则", "第四条"], "——。。", "a-4"),  # junk: no content characters
    ]
    chunks = Chunker().run(ParsedDocument(meta, "", sections), "m")
    assert [(c.section_path, c.anchor, c.text) for c in chunks] == [
        ("第一章 总则 > 第一条至第二条", "a-1", "第一条 短。\n第二条 也短。"),
        ("第二章 附则 > 第三条", "a-3", "第三条 另一章。"),
    ]


def test_sections_that_fit_are_not_merged_once_big_enough() -> None:
    meta = DocumentMeta(title="某条例")
    body = "第一条 " + "甲" * 200 + "。"
    sections = [Section(["第一条"], body, "a-1"), Section(["第二条"], "第二条 短。", "a-2")]
    chunks = Chunker().run(ParsedDocument(meta, "", sections), "m")
    assert [c.section_path for c in chunks] == ["第一条", "第二条"]


def test_chunker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        Chunker(max_chars=100, overlap=100)


def test_sidecar_title_and_disclosure_reach_the_chunks(tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_bytes((PLANS / "004_362f7b72cf697821.txt").read_bytes())
    (tmp_path / "plan.meta.json").write_text(
        json.dumps({"title": "国动办2025年政务公开方案", "disclosure": "不予公开"}, ensure_ascii=False), encoding="utf-8"
    )
    doc = parse_document(plan)
    assert doc.meta.title == "国动办2025年政务公开方案"
    assert doc.meta.disclosure is Disclosure.WITHHELD
    chunks = Chunker().run(doc, "plan")
    assert all(c.embed_text.startswith("国动办2025年政务公开方案\n") for c in chunks)
