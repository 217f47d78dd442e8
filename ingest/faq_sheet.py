"""Read and write FAQ spreadsheets (.csv in UTF-8 ± BOM / GBK / GB18030, or .xlsx) in the staff layout.

    from ingest.faq_sheet import read_faq_sheet, write_faq_xlsx
    result = read_faq_sheet(Path("sample_faq.csv").read_bytes(), "sample_faq.csv")
    result.entries[0].faq_id, result.errors  # ("FAQ-001", [])

Layout (header row, Chinese column names, any order; unknown columns are ignored):
编号, 问题, 答案 (required) · 相似问法 (`|`-separated) · 来源文件 · 条款 · 主题 · 发布机构 · 简短答复 · 主管部门
(optional; 主管部门 is the 处室/单位 that curates the entry, and an entry without one belongs to its 发布机构).
Validation is per row and row numbers are the ones a spreadsheet user sees (header = row 1): an empty
编号/问题/答案 or a repeated 编号 rejects that row only; a missing required column is one error for the file
(row 1); an unreadable file is one error with row 0. Entries come back with status DRAFT.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath

from ingest.errors import IngestError
from ingest.loaders import decode_bytes
from knowledge_base.faqs import strip_control_characters
from knowledge_base.models import FaqEntry, FaqStatus

# Column header → FaqEntry field, in the order write_faq_xlsx writes them.
COLUMNS: dict[str, str] = {
    "编号": "faq_id",
    "问题": "question",
    "答案": "answer",
    "相似问法": "variants",
    "来源文件": "source_titles",
    "条款": "source_articles",
    "主题": "topic",
    "发布机构": "publisher",
    "简短答复": "short_answer",
    "主管部门": "department",
}
REQUIRED = ("编号", "问题", "答案")
# Bounds checked before parsing: an upload limit on the compressed file says nothing about what it inflates to
# (1.6 MB of XLSX can hold 107 MB of XML). The sample sheet is 10 rows and 8 kB; a city's whole FAQ is hundreds.
MAX_SHEET_ROWS = 10_000
MAX_SHEET_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
# Other spellings staff use for the same columns; field names are accepted too.
_ALIASES = {
    "相似问题": "相似问法",
    "近似问法": "相似问法",
    "来源": "来源文件",
    "来源文件名": "来源文件",
    "条款号": "条款",
    "简短回答": "简短答复",
    "短答复": "简短答复",
    "主管处室": "主管部门",
    "责任处室": "主管部门",
    "所属部门": "主管部门",
    "责任单位": "主管部门",
    **{f: col for col, f in COLUMNS.items()},
}
_LIST_SEP = {
    "variants": r"[|｜\n]",
    "source_titles": r"[|｜;；\n]",
    "source_articles": r"[|｜;；、，,\n]",
}


@dataclass
class RowError:
    row: int  # as the spreadsheet shows it: header = 1; 0 = the file as a whole
    error: str


@dataclass
class FaqSheetResult:
    entries: list[FaqEntry] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def read_faq_sheet(data: bytes, filename: str) -> FaqSheetResult:
    """Parse an FAQ sheet; good rows become entries even when other rows have errors.

        r = read_faq_sheet(xlsx_bytes, "faq.xlsx")
        [f"第{e.row}行: {e.error}" for e in r.errors]
    """
    suffix = PurePath(filename).suffix.lower()
    try:
        if suffix == ".csv":
            rows = _csv_rows(data, filename)
        elif suffix in (".xlsx", ".xlsm"):
            rows = _xlsx_rows(data, filename)
        else:
            reason = f"{filename}: unsupported sheet type {suffix or '(none)'!r}; use .csv or .xlsx"
            return FaqSheetResult(errors=[RowError(0, reason)])
    except IngestError as e:
        return FaqSheetResult(errors=[RowError(0, str(e))])
    return _entries(rows)


def write_faq_xlsx(entries: list[FaqEntry]) -> bytes:
    """An .xlsx in the staff layout (list columns joined with "|"); reads back identically with read_faq_sheet.

        Path("faq.xlsx").write_bytes(write_faq_xlsx(entries))
    """
    from openpyxl import Workbook  # lazy: openpyxl costs 0.1 s at every command's start-up, only XLSX needs it
    from openpyxl.styles import Alignment, Font  # lazy: as openpyxl above

    wb = Workbook()
    ws = wb.active
    ws.title = "FAQ"
    ws.append(list(COLUMNS))
    for entry in entries:
        row = []
        for name in COLUMNS.values():
            value = getattr(entry, name)
            # Entries stored before control characters were cleaned on write must still export.
            row.append(strip_control_characters("|".join(value) if isinstance(value, list) else (value or "")))
        ws.append(row)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    widths = {"编号": 12, "问题": 36, "答案": 70, "相似问法": 40, "来源文件": 30, "简短答复": 40}
    for i, col in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = widths.get(col, 14)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------------------------------ internals


def _bounded(rows, filename: str) -> list[tuple[int, list[str]]]:
    """Numbered rows (header = 1), refusing a sheet longer than MAX_SHEET_ROWS entries without reading the rest."""
    out = []
    for n, row in enumerate(rows, start=1):
        if n > MAX_SHEET_ROWS + 1:
            raise IngestError(filename, f"表格超过{MAX_SHEET_ROWS}行 / the sheet has more than {MAX_SHEET_ROWS} rows; split it")
        out.append((n, row))
    return out


def _csv_rows(data: bytes, filename: str) -> list[tuple[int, list[str]]]:
    text, _ = decode_bytes(data, filename)
    # csv.reader yields one record per spreadsheet row even when a quoted cell spans several lines.
    return _bounded(csv.reader(io.StringIO(text, newline="")), filename)


def _check_inflated_size(data: bytes, filename: str) -> None:
    """Read the zip directory (not the contents): refuse a workbook that inflates beyond the limit."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            inflated = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile as e:
        raise IngestError(filename, f"not a valid .xlsx workbook ({e})") from e
    if inflated > MAX_SHEET_UNCOMPRESSED_BYTES:
        limit = MAX_SHEET_UNCOMPRESSED_BYTES // (1024 * 1024)
        raise IngestError(
            filename,
            f"表格解压后超过{limit}MB / the workbook inflates to {inflated / 1024 / 1024:.0f} MB, more than {limit} MB",
        )


def _xlsx_rows(data: bytes, filename: str) -> list[tuple[int, list[str]]]:
    _check_inflated_size(data, filename)
    try:
        from openpyxl import load_workbook  # lazy: openpyxl costs 0.1 s at every command's start-up, only XLSX needs it

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            return _bounded(([_cell(v) for v in row] for row in ws.iter_rows(values_only=True)), filename)
        finally:
            wb.close()
    except IngestError:
        raise
    except Exception as e:  # zipfile / KeyError / openpyxl errors on a damaged workbook
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IngestError(filename, f"not a valid .xlsx workbook ({detail})") from e


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an 编号 typed as 1 comes back as 1.0
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _header_key(cell: str) -> str:
    key = re.sub(r"[\s*＊\ufeff]|[（(]必填[)）]", "", cell)
    return _ALIASES.get(key, key)


def _entries(rows: list[tuple[int, list[str]]]) -> FaqSheetResult:
    result = FaqSheetResult()
    rows = [(n, cells) for n, cells in rows if any(c.strip() for c in cells)]
    if not rows:
        result.errors.append(RowError(0, "the sheet is empty"))
        return result
    header_row, header = rows[0]
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        key = _header_key(cell)
        if key in COLUMNS and key not in index:
            index[key] = i
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        result.errors.append(RowError(header_row, f"missing required column(s): {', '.join(missing)}"))
        return result

    first_seen: dict[str, int] = {}
    for n, cells in rows[1:]:
        values = {col: (cells[i].strip() if i < len(cells) else "") for col, i in index.items()}
        empty = [c for c in REQUIRED if not values[c]]
        if empty:
            result.errors.append(RowError(n, "empty required column(s): " + ", ".join(empty)))
            continue
        faq_id = values["编号"]
        if faq_id in first_seen:
            result.errors.append(RowError(n, f"duplicate 编号 {faq_id} (first in row {first_seen[faq_id]})"))
            continue
        first_seen[faq_id] = n
        result.entries.append(_entry(values))
    return result


def _entry(values: dict[str, str]) -> FaqEntry:
    kwargs: dict[str, object] = {}
    for col, name in COLUMNS.items():
        value = values.get(col, "")
        if name in _LIST_SEP:
            items = [_strip_title(v) if name == "source_titles" else v.strip() for v in re.split(_LIST_SEP[name], value)]
            kwargs[name] = list(dict.fromkeys(v for v in items if v))  # dedupe, keep order
        else:
            kwargs[name] = value or None
    # The 处室/单位 that curates the entry (issue 11): 主管部门 when the sheet has it, else its 发布机构.
    kwargs["department"] = kwargs.get("department") or kwargs.get("publisher")
    return FaqEntry(status=FaqStatus.DRAFT, **kwargs)  # type: ignore[arg-type]


def _strip_title(title: str) -> str:
    """"《工伤保险条例》" → "工伤保险条例": the book-title marks are punctuation, not part of the name."""
    title = title.strip()
    return title[1:-1].strip() if title.startswith("《") and title.endswith("》") else title
