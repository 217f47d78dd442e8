"""FAQ spreadsheets: the shared sample, encodings, .xlsx round trip, row-level validation."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest.faq_sheet import COLUMNS, RowError, read_faq_sheet, write_faq_xlsx
from knowledge_base.models import FaqEntry, FaqStatus

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "faq" / "sample_faq.csv"


def _csv(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


def test_sample_sheet_reads_cleanly() -> None:
    result = read_faq_sheet(SAMPLE.read_bytes(), SAMPLE.name)
    assert result.errors == []
    assert [e.faq_id for e in result.entries] == [f"FAQ-{n:03d}" for n in range(1, 11)]
    faq4 = result.entries[3]
    assert faq4.question == "失业保险金能领多长时间？"
    assert faq4.answer.startswith("累计缴费满1年不足5年的，最长领取12个月")
    assert faq4.variants == ["失业金领几个月", "失业保险金领取期限", "交了几年失业险能领多久"]
    assert faq4.source_titles == ["失业保险条例"] and faq4.source_articles == ["第十七条"]
    assert (faq4.topic, faq4.publisher, faq4.short_answer) == ("失业保险", "国务院", None)
    assert all(e.status is FaqStatus.DRAFT for e in result.entries)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_sample_sheet_in_other_encodings(encoding: str) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    expected = read_faq_sheet(SAMPLE.read_bytes(), "faq.csv").entries
    result = read_faq_sheet(text.encode(encoding), "faq.csv")
    assert result.errors == [] and result.entries == expected


def test_xlsx_round_trip_including_short_answer_and_lists() -> None:
    entries = read_faq_sheet(SAMPLE.read_bytes(), SAMPLE.name).entries
    entries[0].short_answer = "20个工作日内答复，可延长20个工作日。"
    entries[1].source_articles = ["第十八条", "第十九条"]
    data = write_faq_xlsx(entries)
    assert data[:2] == b"PK"
    back = read_faq_sheet(data, "faq.xlsx")
    assert back.errors == []
    assert back.entries == entries


def test_xlsx_written_layout() -> None:
    from openpyxl import load_workbook

    entry = FaqEntry(faq_id="FAQ-100", question="问？", answer="答。", variants=["问法一", "问法二"])
    ws = load_workbook(io.BytesIO(write_faq_xlsx([entry]))).active
    assert [c.value for c in ws[1]] == list(COLUMNS)
    assert [c.value for c in ws[2]][:4] == ["FAQ-100", "问？", "答。", "问法一|问法二"]


def test_row_level_errors_keep_good_rows() -> None:
    data = _csv(
        "编号,问题,答案,相似问法,备注",
        "A-1,问题一？,答案一。,甲|乙|,随便写",
        "A-2,,答案二。,,",
        ",问题三？,,,",
        "A-1,重复的编号？,答案。,,",
        ",,,,",  # blank row: ignored, no error
        "A-4,问题四？,答案四。,,",
    )
    result = read_faq_sheet(data, "faq.csv")
    assert [e.faq_id for e in result.entries] == ["A-1", "A-4"]
    assert result.entries[0].variants == ["甲", "乙"]
    assert result.errors == [
        RowError(3, "empty required column(s): 问题"),
        RowError(4, "empty required column(s): 编号, 答案"),
        RowError(5, "duplicate 编号 A-1 (first in row 2)"),
    ]


def test_missing_required_header_is_one_file_level_error() -> None:
    result = read_faq_sheet(_csv("编号,问题,相似问法", "A-1,问？,x"), "faq.csv")
    assert result.entries == []
    assert result.errors == [RowError(1, "missing required column(s): 答案")]


def test_multiline_cell_keeps_spreadsheet_row_numbers() -> None:
    data = _csv('编号,问题,答案', 'A-1,问？,"第一行', '第二行"', "A-2,,答。")
    result = read_faq_sheet(data, "faq.csv")
    assert result.entries[0].answer == "第一行\n第二行"
    assert result.errors == [RowError(3, "empty required column(s): 问题")]


def test_xlsx_numbers_and_header_variants() -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["编号*", " 问题 ", "答案（必填）", "简短回答", "条款"])
    ws.append([7, "问？", "答。", "短答。", "第一条、第二条"])
    buffer = io.BytesIO()
    wb.save(buffer)
    result = read_faq_sheet(buffer.getvalue(), "faq.xlsx")
    assert result.errors == []
    entry = result.entries[0]
    assert (entry.faq_id, entry.short_answer, entry.source_articles) == ("7", "短答。", ["第一条", "第二条"])


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"PK\x03\x04broken", "faq.xlsx", "faq.xlsx: not a valid .xlsx workbook"),
        (bytes(range(256)), "faq.csv", "faq.csv: binary content"),
        (b"a,b", "faq.xls", "unsupported sheet type"),
        (b"", "faq.csv", "faq.csv: empty file"),
    ],
)
def test_unreadable_files_give_one_row_zero_error(data: bytes, filename: str, message: str) -> None:
    result = read_faq_sheet(data, filename)
    assert result.entries == []
    assert len(result.errors) == 1 and result.errors[0].row == 0
    assert message in result.errors[0].error
