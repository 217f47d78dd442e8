"""Loading files of every supported format and encoding, and failing clearly on the ones that cannot be read."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.loaders import SUPPORTED_SUFFIXES, decode_bytes, html_to_text, is_document_file, load_file
from ingest.parse import parse_document

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PLANS = sorted((SHARED / "corpus" / "plans").glob("*.txt"))

TRADITIONAL = (
    "中華人民共和國政府資訊公開條例規定，行政機關應當主動公開政府資訊。\n"
    "申請人可以向行政機關申請獲取相關政府資訊，行政機關應當在二十個工作日內予以答覆。"
)


def make_text_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF whose text layer holds `lines`, CJK included (no library, no font file).

    The glyphs are CIDs of a Type0 / Identity-H font that is not embedded; a ToUnicode CMap maps each CID to
    its character, which is exactly what a PDF reader's text extraction uses.
    """
    chars = sorted({c for line in lines for c in line})
    cid = {c: i + 1 for i, c in enumerate(chars)}
    bfchar = "\n".join(f"<{cid[c]:04X}> <{ord(c):04X}>" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{len(chars)} beginbfchar\n{bfchar}\nendbfchar\nendcmap\n"
        "CMapName currentdict /CMap defineresource pop\nend\nend\n"
    )
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    ops += ["<" + "".join(f"{cid[c]:04X}" for c in line) + "> Tj T*" for line in lines]
    content = "\n".join(ops + ["ET"])
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        f"<< /Length {len(content.encode())} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 8 0 R /DW 1000 >>",
        f"<< /Length {len(cmap.encode())} >>\nstream\n{cmap}endstream",
        "<< /Type /FontDescriptor /FontName /SimSun /Flags 4 /FontBBox [0 -141 1000 859] /ItalicAngle 0 "
        "/Ascent 859 /Descent -141 /CapHeight 859 /StemV 80 >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# ------------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.name)
@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_reencoded_plan_parses_like_the_utf8_original(plan: Path, encoding: str, tmp_path: Path) -> None:
    original = parse_document(plan)
    copy = tmp_path / plan.name
    copy.write_bytes(plan.read_text(encoding="utf-8").encode(encoding))

    raw = load_file(copy)
    parsed = parse_document(copy)

    assert raw.encoding == encoding
    assert raw.text == plan.read_text(encoding="utf-8")
    assert parsed.text == original.text
    assert parsed.sections == original.sections
    assert {**vars(parsed.meta), "source_path": ""} == {**vars(original.meta), "source_path": ""}


def test_gbk_detected_and_decoded_as_gb18030(tmp_path: Path) -> None:
    text = "失业保险金的领取期限最长为二十四个月。\n工伤认定申请应当在三十日内提出。"
    path = tmp_path / "gbk.txt"
    path.write_bytes(text.encode("gbk"))
    raw = load_file(path)
    assert raw.text == text
    assert raw.encoding == "gb18030"


@pytest.mark.parametrize("encoding", ["utf-8", "big5", "gb18030"])
def test_traditional_character_text_loads(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / f"traditional-{encoding}.txt"
    path.write_bytes(TRADITIONAL.encode(encoding))
    assert load_file(path).text == TRADITIONAL


def test_decode_bytes_keeps_utf8_and_strips_bom() -> None:
    assert decode_bytes("政务公开".encode("utf-8")) == ("政务公开", "utf-8")
    assert decode_bytes("\ufeff政务公开".encode("utf-8")) == ("政务公开", "utf-8-sig")


# ------------------------------------------------------------------------------------------------ failures


def test_ingest_error_names_file_and_reason() -> None:
    err = IngestError(Path("/data/政策.pdf"), "not a valid PDF (EOF marker not found)")
    assert str(err) == "政策.pdf: not a valid PDF (EOF marker not found)"
    assert err.path == Path("/data/政策.pdf") and err.reason.startswith("not a valid PDF")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("政策.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ngarbage", "not a valid PDF"),
        ("文件.pdf", b"this is not a pdf at all", "not a valid PDF"),
        ("方案.docx", b"PK\x03\x04 definitely not a complete zip archive", "not a valid DOCX"),
        ("方案2.docx", "纯文本冒充的Word文件".encode(), "not a valid DOCX"),
        ("binary.txt", bytes(range(256)) * 8, "binary content"),
        ("noise.txt", bytes((i * 131 + 17) % 128 + 128 for i in range(5000)), "undecodable text"),
        ("empty.md", b"  \n\n ", "empty file"),
        ("old.doc", b"\xd0\xcf\x11\xe0 word 97", "unsupported file type"),
    ],
)
def test_unreadable_files_raise_ingest_error_naming_the_file(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(IngestError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    assert reason in message
    assert "\n" not in message
    # parse_document surfaces the same error
    with pytest.raises(IngestError, match=name.replace(".", r"\.")):
        parse_document(path)


def test_pdf_without_text_layer_is_reported_as_scanned(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "扫描件.pdf"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(IngestError, match=r"^扫描件\.pdf: no text layer \(scanned\?\)$"):
        load_file(path)


# ------------------------------------------------------------------------------------------------ formats


def test_pdf_text_layer_is_extracted(tmp_path: Path) -> None:
    lines = ["失业保险条例", "第十七条 失业人员失业前所在单位和本人累计缴费满1年不足5年的，领取失业保险金的期限最长为12个月。"]
    path = tmp_path / "条例.pdf"
    path.write_bytes(make_text_pdf(lines))

    raw = load_file(path)
    assert raw.kind == "pdf"
    assert raw.text.split("\n")[:2] == lines

    doc = parse_document(path)
    assert doc.meta.title == "失业保险条例"
    assert "领取失业保险金的期限最长为12个月" in doc.text


def test_docx_paragraphs_and_tables_in_reading_order(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("某市政务公开工作实施方案")
    document.add_paragraph("一、总体要求")
    document.add_paragraph("坚持以公开为常态、不公开为例外。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "事项", "时限"
    table.cell(1, 0).text, table.cell(1, 1).text = "依申请公开答复", "20个工作日"
    document.add_paragraph("二、重点任务")
    path = tmp_path / "方案.docx"
    document.save(path)

    raw = load_file(path)
    assert raw.kind == "docx"
    assert raw.text.split("\n") == [
        "某市政务公开工作实施方案", "一、总体要求", "坚持以公开为常态、不公开为例外。", "事项 时限", "依申请公开答复 20个工作日", "二、重点任务",
    ]
    doc = parse_document(path)
    assert [s.path for s in doc.sections] == [["正文"], ["一、总体要求"], ["二、重点任务"]]


def test_html_keeps_blocks_and_drops_script_style_nav(tmp_path: Path) -> None:
    html = """<!DOCTYPE html><html><head><meta charset="gbk"><title>站点标题</title>
      <style>p { color: red }</style></head><body>
      <nav><a href="/">首页</a> &gt; <a>政务公开</a></nav>
      <div class="content"><h1>某局政务公开实施方案</h1>
      <p>一、总体要求</p><p>坚持&nbsp;以人民为中心，
         深化政务公开。</p>
      <ul><li>（一）主动公开</li><li>（二）依申请公开</li></ul>
      <table><tr><td>事项</td><td>时限</td></tr></table>
      <script>var x = "不应出现";</script></div>
      <div>【打印本页】【关闭窗口】</div></body></html>"""
    path = tmp_path / "page.htm"
    path.write_bytes(html.encode("gbk"))

    raw = load_file(path)
    assert raw.kind == "html" and raw.encoding == "gb18030"
    assert raw.text.split("\n") == [
        "某局政务公开实施方案", "一、总体要求", "坚持\xa0以人民为中心， 深化政务公开。", "（一）主动公开", "（二）依申请公开",
        "事项 时限", "【打印本页】【关闭窗口】",
    ]
    doc = parse_document(path)
    assert "打印本页" not in doc.text and "不应出现" not in doc.text and "首页" not in doc.text
    assert doc.meta.title == "某局政务公开实施方案"


def test_html_to_text_br_and_pre() -> None:
    assert html_to_text("<p>甲<br>乙<br/>丙</p><pre>  a\n  b</pre>") == "甲\n乙\n丙\na\nb"


def test_supported_suffixes_and_sidecars_are_not_documents() -> None:
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".html", ".htm", ".docx", ".pdf"}
    assert is_document_file(Path("a/方案.PDF"))
    assert not is_document_file(Path("a/方案.pdf.meta.json"))
    assert not is_document_file(Path("a/方案.meta.yaml"))
    assert not is_document_file(Path("a/faq.xlsx"))
    assert not is_document_file(Path("a/faq.csv"))
