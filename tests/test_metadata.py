"""Metadata and clean text from the real corpus: the 5 scraped plan pages, regulations, sidecars."""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from ingest.cleaning import clean_text
from ingest.errors import IngestError
from ingest.loaders import RawDocument
from ingest.metadata import extract_metadata, parse_date
from knowledge_base.text import cn_to_int
from ingest.parse import parse_document
from knowledge_base.models import Disclosure, DocType

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
PLANS = CORPUS / "plans"
REGS = CORPUS / "national" / "行政法规"

# Expected values written by reading each page.
PLAN_META = {
    "000_e71e79a35d633e9d.txt": dict(
        title="济南市司法局2025年政务公开工作实施方案", publisher="济南市司法局", doc_number=None,
        index_number="11370100004188776N/2025-00149", written_date=date(2025, 6, 16), published_date=date(2025, 6, 16),
        topic="政务公开实施方案", validity_text=None, region="济南",
    ),
    "001_e698f4235984d263.txt": dict(
        title="台州市司法局2017年政务公开工作实施方案", publisher="台州市司法局", doc_number=None,
        index_number=None, written_date=date(2017, 6, 20), published_date=date(2017, 6, 20),
        topic=None, validity_text=None, region="台州",
    ),
    "002_9a0f6c99e3141301.txt": dict(
        title="淄博市人民政府办公室关于印发《淄博市贯彻落实〈2025年山东省政务公开工作要点〉实施方案》的通知",
        publisher="淄博市人民政府办公室", doc_number="淄政办字〔2025〕17号",
        index_number="11370300004224423Q/2025-5521836", written_date=date(2025, 5, 28), published_date=date(2025, 5, 28),
        topic="综合政务-其他", validity_text="有效", region="淄博",
    ),
    "003_3946f67f285457c1.txt": dict(
        title="2024年济南市财政局政务公开工作要点实施方案", publisher="济南市财政局", doc_number=None,
        index_number="113701000041888052/2024-00330", written_date=date(2024, 12, 9), published_date=date(2024, 7, 9),
        topic="其他文件", validity_text=None, region="济南",
    ),
    "004_362f7b72cf697821.txt": dict(
        title="济南市国防动员办公室2025年度政务公开工作实施方案", publisher="人防办工程管理处", doc_number=None,
        index_number="11370100004189314T/2025-00059", written_date=date(2025, 6, 19), published_date=date(2025, 6, 19),
        topic="政务公开实施方案", validity_text=None, region="济南",
    ),
}
# A sentence from each page's real content, and one from deep inside it.
PLAN_CONTENT = {
    "000_e71e79a35d633e9d.txt": ["落实年度重大行政决策事项目录公开制度", "列入督查督办,督促及时做好整改提升工作。"],
    "001_e698f4235984d263.txt": ["应在24小时内举行新闻发布会", "并将调查处理结果向群众公布。"],
    "002_9a0f6c99e3141301.txt": ["精准做好异地就医报销政策宣传", "贯彻落实情况要纳入政府信息公开工作年度报告予以公开,接受社会监督。"],
    "003_3946f67f285457c1.txt": ["建设“一件事”专题专栏", "共同打造市级政务公开品牌体系。"],
    "004_362f7b72cf697821.txt": ["按照“谁开设、谁申请、谁使用、谁负责”的原则管理政府网站域名", "促进整体工作水平提升。"],
}
BOILERPLATE = ["上一篇", "下一篇", "打印本页", "关闭窗口", "Produced By", "??", "扫码", "无障碍浏览", "首页 >", "浏览次数", "信息来源", "|||", "• "]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ------------------------------------------------------------------------------------------------ plans


@pytest.mark.parametrize("name", sorted(PLAN_META))
def test_plan_metadata(name: str) -> None:
    meta = parse_document(PLANS / name).meta
    for field, expected in PLAN_META[name].items():
        assert getattr(meta, field) == expected, field
    assert meta.doc_type is DocType.PLAN
    assert meta.disclosure is Disclosure.PUBLIC
    assert meta.source_path.endswith(name)


@pytest.mark.parametrize("name", sorted(PLAN_META))
def test_plan_boilerplate_gone_and_content_kept(name: str) -> None:
    doc = parse_document(PLANS / name)
    for junk in BOILERPLATE:
        assert junk not in doc.text, junk
        assert all(junk not in s.text for s in doc.sections), junk
    for sentence in PLAN_CONTENT[name]:
        assert sentence in doc.text
    # every real paragraph of the page survives (compared without whitespace; "?" runs were garbage)
    squashed = _squash(doc.text)
    for line in (PLANS / name).read_text(encoding="utf-8").split("\n"):
        line = re.sub(r"\?+|\|", "", line).strip()
        is_header = line.startswith("•") or "信息来源" in line or line.endswith("发文机关")  # label lines
        if len(re.findall(r"[\u4e00-\u9fff]", line)) > 20 and not is_header:
            assert _squash(line) in squashed, line[:40]
    # the header's label lines are not part of the body
    assert not re.search(r"^(索引号|发布机构|成文日期|发文字号)", doc.text, re.M)


def test_plan_004_disclosure_label_and_empty_labels() -> None:
    """Key and value on separate lines; 文件编号 / 有效性 / 文件登记号 are empty and must not take the next line."""
    meta = parse_document(PLANS / "004_362f7b72cf697821.txt").meta
    assert meta.disclosure is Disclosure.PUBLIC
    assert meta.doc_number is None and meta.validity_text is None
    assert meta.written_date == date(2025, 6, 19)  # "成文日期:" came right after the empty "文件编号:"


def test_taizhou_giant_line_is_split_into_paragraphs() -> None:
    doc = parse_document(PLANS / "001_e698f4235984d263.txt")
    lines = doc.text.split("\n")
    assert max(len(line) for line in lines) < 600
    for heading in ["一、总体要求", "二、主要任务", "(一)推进政务服务公开", "三、公开程序", "四、保障措施"]:
        assert heading in lines
    assert ["台州市司法局", "2017年6月20日"] == lines[lines.index("台州市司法局"): lines.index("台州市司法局") + 2]


def test_header_layouts_synthetic() -> None:
    text = "\n".join([
        "• 索引号: 123456789A/2025-00001 组配分类: 计划总结",
        "• 发布机构: 某市民政局 统一编号:",
        "• 发文字号: 有效性:",
        "• 公开方式: 依申请公开",
        "某市民政局2025年工作计划",
        "一、总体要求",
    ])
    meta, body = extract_metadata(RawDocument(Path("x.txt"), text, "text"))
    assert meta.index_number == "123456789A/2025-00001" and meta.topic == "计划总结"
    assert meta.publisher == "某市民政局"
    assert meta.doc_number is None and meta.validity_text is None
    assert meta.disclosure is Disclosure.ON_REQUEST
    assert meta.title == "某市民政局2025年工作计划"
    assert body.split("\n")[0] == "某市民政局2025年工作计划"

    stacked = "标题\n某县关于做好政务公开工作的通知发文机关\n某县人民政府办公室\n发文字号\n某政办发〔2024〕3号\n有效性\n成文日期\n2024-03-01\n各乡镇人民政府:"
    meta, body = extract_metadata(RawDocument(Path("y.txt"), stacked, "text"))
    assert (meta.title, meta.publisher, meta.doc_number) == ("某县关于做好政务公开工作的通知", "某县人民政府办公室", "某政办发〔2024〕3号")
    assert meta.validity_text is None and meta.written_date == date(2024, 3, 1)
    assert body == "各乡镇人民政府:"


# ------------------------------------------------------------------------------------------------ cleaning


def test_clean_text_rules() -> None:
    raw = "\n".join([
        "无障碍浏览", "首页 > 政务公开 > 实施方案", "标题\u3000一", "信息来源:某局 浏览次数: 字体:【 分享:",
        "正文第一段，“引号”（括号）？", "", "", "", "正文第二段 | ||||||||", "| ||||||||", "扫一扫在手机打开当前页",
        "【打印本页】【关闭窗口】", "  • 上一篇:", "关闭窗口", "Produced By 大汉网络 大汉版通发布系统", "? ?????",
    ])
    assert clean_text(raw) == "标题 一\n正文第一段，“引号”（括号）？\n\n正文第二段"


def test_clean_text_keeps_question_marks_in_words_and_markdown_tables() -> None:
    text = "见 https://example.gov.cn/a?id=3 。\n| 项目 | 标准 |\n|---|---|\n| 甲 | 1 |"
    assert clean_text(text) == text


# ------------------------------------------------------------------------------------------------ regulations


def test_regulation_metadata_shiye_baoxian() -> None:
    doc = parse_document(REGS / "失业保险条例(1999-01-22).md")
    meta = doc.meta
    assert meta.title == "失业保险条例"
    assert meta.doc_type is DocType.REGULATION
    assert meta.version_date == meta.published_date == date(1999, 1, 22)
    assert meta.doc_number == "中华人民共和国国务院令第258号"
    assert meta.publisher == "国务院" and meta.region == "全国"
    assert meta.revision_notes == ["1998年12月26日 国务院第11次常务会议通过", "1999年1月22日 中华人民共和国国务院令第258号发布"]
    assert "INFO END" not in doc.text and "国务院第11次常务会议通过" not in doc.text
    assert doc.text.startswith("## 第一章 总则")


def test_holiday_rules_both_versions() -> None:
    old = parse_document(REGS / "全国年节及纪念日放假办法(2013-12-11).md")
    new = parse_document(REGS / "全国年节及纪念日放假办法(2024-11-10).md")
    assert old.meta.title == new.meta.title == "全国年节及纪念日放假办法"
    assert (old.meta.version_date, new.meta.version_date) == (date(2013, 12, 11), date(2024, 11, 10))
    assert len(old.meta.revision_notes) == 3 and len(new.meta.revision_notes) == 5
    assert new.meta.revision_notes[0] == "1949年12月23日 政务院发布"
    assert new.meta.revision_notes[-1].startswith("2024年11月10日 《国务院关于修改〈全国年节及纪念日放假办法〉的决定》第四次修订")
    assert old.meta.publisher == new.meta.publisher == "国务院"  # the latest revision's organ, not 1949's 政务院
    old_2 = next(s for s in old.sections if s.anchor == "a-2")
    new_2 = next(s for s in new.sections if s.anchor == "a-2")
    assert "新年，放假1天" in old_2.text and "元旦，放假1天" in new_2.text


def test_law_keeps_full_title_and_congress_publisher() -> None:
    meta = parse_document(CORPUS / "national" / "社会法" / "劳动合同法(2012-12-28).md").meta
    assert meta.title == "中华人民共和国劳动合同法"
    assert meta.publisher == "全国人民代表大会常务委员会"
    assert meta.version_date == date(2012, 12, 28) and meta.region == "全国"
    assert meta.doc_number is None  # the latest line carries no 令 number


def test_local_regulations_region_and_publisher() -> None:
    jinan = parse_document(CORPUS / "local" / "山东" / "济南市农村公路条例(2014-09-26).md").meta
    assert (jinan.region, jinan.publisher) == ("济南", "济南市人民代表大会常务委员会")
    # wrapped header line "2014年9月26" + "日山东省…批准" is joined back into one note
    assert jinan.revision_notes[-1] == "2014年9月26日山东省第十二届人民代表大会常务委员会第十次会议批准"

    zj = parse_document(CORPUS / "local" / "浙江" / "浙江省禁毒条例.md").meta  # no date in the file name
    assert zj.region == "浙江" and zj.publisher == "浙江省人民代表大会常务委员会"
    assert zj.version_date == date(2011, 11, 25)  # latest note that is not a bare "施行" line
    assert zj.doc_number == "浙江省第十一届人民代表大会常务委员会公告第71号"

    qd = parse_document(CORPUS / "local" / "山东" / "青岛市河道管理条例(2020-03-26).md").meta
    assert (qd.region, qd.publisher) == ("青岛", "青岛市人民代表大会常务委员会")  # not the province that approved


# ------------------------------------------------------------------------------------------------ sidecars


@pytest.mark.parametrize("sidecar_name", ["000_e71e79a35d633e9d.txt.meta.json", "000_e71e79a35d633e9d.meta.yaml"])
def test_sidecar_overrides_extracted_fields(tmp_path: Path, sidecar_name: str) -> None:
    plan = tmp_path / "000_e71e79a35d633e9d.txt"
    plan.write_bytes((PLANS / plan.name).read_bytes())
    overrides = {"标题": "新标题", "公开方式": "依申请公开", "发布日期": "2025-07-01", "doc_number": "济司发〔2025〕1号", "有效性": "有效"}
    sidecar = tmp_path / sidecar_name
    if sidecar_name.endswith(".json"):
        sidecar.write_text(json.dumps(overrides, ensure_ascii=False), encoding="utf-8")
    else:
        sidecar.write_text("\n".join(f"{k}: '{v}'" for k, v in overrides.items()), encoding="utf-8")

    meta = parse_document(plan).meta
    assert meta.title == "新标题"
    assert meta.disclosure is Disclosure.ON_REQUEST
    assert meta.published_date == date(2025, 7, 1)
    assert meta.doc_number == "济司发〔2025〕1号" and meta.validity_text == "有效"
    assert meta.publisher == "济南市司法局"  # fields the sidecar does not name stay as extracted


def test_yaml_sidecar_native_dates_and_enum_names(tmp_path: Path) -> None:
    doc_path = tmp_path / "note.txt"
    doc_path.write_text("某局关于某事的通知\n一、总体要求\n内容。", encoding="utf-8")
    (tmp_path / "note.txt.meta.yaml").write_text(
        "written_date: 2024-05-01\ndisclosure: WITHHELD\ndoc_type: regulation\nrevision_notes: |\n  2024年5月1日 发布\n",
        encoding="utf-8",
    )
    meta = parse_document(doc_path).meta
    assert meta.written_date == date(2024, 5, 1)
    assert meta.disclosure is Disclosure.WITHHELD and meta.doc_type is DocType.REGULATION
    assert meta.revision_notes == ["2024年5月1日 发布"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"titel": "x"}', "unknown metadata field 'titel'"),
        ('{"发布日期": "去年"}', "not a date"),
        ('{"公开方式": "随便"}', "disclosure"),
        ("[1, 2]", "must be a mapping"),
        ("{not json", "unreadable metadata sidecar"),
    ],
)
def test_bad_sidecar_is_an_ingest_error_naming_it(tmp_path: Path, content: str, reason: str) -> None:
    doc_path = tmp_path / "plan.txt"
    doc_path.write_text("某方案\n一、总体要求", encoding="utf-8")
    (tmp_path / "plan.txt.meta.json").write_text(content, encoding="utf-8")
    with pytest.raises(IngestError) as info:
        parse_document(doc_path)
    assert str(info.value).startswith("plan.txt.meta.json: ")
    assert reason in str(info.value)


# ------------------------------------------------------------------------------------------------ helpers


def test_parse_date_and_numerals() -> None:
    assert parse_date("2025-06-16") == date(2025, 6, 16)
    assert parse_date("成文日期：2025年5月28日") == date(2025, 5, 28)
    assert parse_date("二〇一七年六月二十日") == date(2017, 6, 20)
    assert parse_date("2025-13-40") is None and parse_date("有效") is None
    assert [cn_to_int(x) for x in ["十七", "二十", "一百零二", "一百一十五", "23"]] == [17, 20, 102, 115, 23]
