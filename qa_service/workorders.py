"""12345 work-order import: the spreadsheet the hotline system exports (CSV or XLSX) becomes masked tickets that
the question analytics groups with the chat questions ("网站 120，热线工单 340").

    importer = WorkOrderImporter(kb, embed=embedder.embed_queries, answers=lambda q: engine.ask(q, record=False))
    report = importer.run(data, "工单导出.xlsx", mapping=None, actor="王编辑")
    report.added, report.duplicates, report.errors      # 212, 0, [RowError(row=7, error="诉求内容为空")]

Per row: the mapped columns are read (defaults are the usual Chinese headers, see DEFAULT_COLUMNS; staff can
change them and the mapping that last read an export is remembered), ID and phone numbers are masked in every text field, the
ask is cut out of the hotline's narrative ("来电人反映……咨询失业保险金最长可以领多久。" → "失业保险金最长可以领多久"),
normalized and embedded like a chat question, and asked of the knowledge base without logging it, so a cluster
can say whether the knowledge base answers what the tickets ask. A ticket number already stored is skipped.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Callable, Iterable

import numpy as np
from charset_normalizer import from_bytes

from knowledge_base.privacy import label_personal_info
from knowledge_base.store import KnowledgeBase
from knowledge_base.workorders import WorkOrder, WorkOrderStore

from .normalize import QueryNormalizer

# field -> headers tried in order when no mapping is given (the exports of the 12345 systems we have seen).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket_no": ("工单编号", "工单号", "编号", "受理编号"),
    "received_at": ("受理时间", "来电时间", "登记时间", "创建时间", "工单时间"),
    "content": ("诉求内容", "来电内容", "问题描述", "工单内容", "反映内容"),
    "category": ("诉求类型", "问题分类", "工单类型", "诉求分类"),
    "department": ("承办单位", "办理单位", "责任单位", "承办部门"),
    "result": ("办理结果", "处理结果", "答复内容", "办理情况"),
}
FIELD_LABELS = {
    "ticket_no": "工单编号", "received_at": "受理时间", "content": "诉求内容", "category": "诉求类型",
    "department": "承办单位", "result": "办理结果",
}
REQUIRED = ("received_at", "content")
MAX_ROWS = 50_000
# Rows a sheet may hold, empty ones included: openpyxl fills a gap in the row numbers with empty rows.
MAX_SHEET_ROWS = 2 * MAX_ROWS
MAX_COLUMNS = 256
# 50,000 rows of the test export (tests/workorder_sheet.py) inflate to 43 MB; a spreadsheet of real text compresses
# 5-15x (that export: 12x). A 331 kB file of 1,000,000 padded rows inflated 250x.
MAX_INFLATED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM = 1024 * 1024  # a small member (styles, theme) may compress further and costs nothing
MAX_CONTENT = 4000
# Times in the export are China Standard Time; the store keeps naive UTC like the query log.
CST = timedelta(hours=8)

# ------------------------------------------------------------------------------------------------ masking
def mask(text: str) -> str:
    """ID-card, mobile, landline, bank-card numbers, e-mail addresses and plates replaced by a label ("[手机号]"):
    the query log's rules (knowledge_base.privacy), without its check-digit tests (see there why)."""
    return label_personal_info(text, checked=False)


# ------------------------------------------------------------------------------------------------ the ask
_ASK_MARKERS = ("咨询", "询问", "想了解", "想知道", "请问", "问询", "了解一下", "求助")
_BOILERPLATE = re.compile(
    r"(?:来电号码|联系电话|联系方式|身份证号|证件号码)[：:]?\s*\[[^\]]+\]|"
    r"(?:请|望|希望|要求)(?:相关|有关|职能)?(?:部门|单位)[^。！？!?；;]*|"
    r"\[[^\]]+\]"
)
_LEAD = re.compile(r"^(?:市民|群众|来电人|来电市民|诉求人|反映人|来电者|该市民)?(?:来电|致电|来信|留言|通过[^，,]{1,8})?"
                   r"(?:反映|称|表示|诉求|求助|说)?[：:，,\s]*")
_CLAUSES = re.compile(r"[。！？!?；;\n]+")
# An ask that starts like this names its subject earlier in the sentence ("公司没给他交住房公积金，想知道单位…").
_VAGUE_START = re.compile(r"^(?:单位|其|他|她|这|该|此|那|上述|相关|具体|对方)")
_TAIL = re.compile(r"(?:的)?(?:相关)?(?:问题|事宜|政策|情况)?[，,。\s]*$")


def ask_of(content: str) -> str:
    """The question inside a ticket's narrative: the clause that asks (after 咨询/询问/想了解 …), else the
    narrative without its formulaic parts, at most 120 characters."""
    text = _BOILERPLATE.sub("", content)
    clauses = [c.strip(" ，,：:") for c in _CLAUSES.split(text) if c.strip(" ，,：:")]
    for clause in clauses:
        for marker in _ASK_MARKERS:
            at = clause.rfind(marker)
            if at >= 0:
                ask = _TAIL.sub("", clause[at + len(marker):].lstrip("：:，, "))
                if len(ask) >= 4:
                    if len(ask) < 10 and _VAGUE_START.match(ask):  # "想知道单位缴存比例是多少": say about what
                        before = re.split(r"[，,]", _LEAD.sub("", clause[:at]).strip("，, "))[-1]
                        ask = f"{before}，{ask}" if before else ask
                    return ask[:120]
    for clause in clauses:  # no marker: the first clause that reads as a question
        if re.search(r"(?:吗|么|多少|多久|几|如何|怎么|怎样|哪|是否|能否|可否|什么)", clause):
            return _TAIL.sub("", _LEAD.sub("", clause))[:120] or clause[:120]
    rest = _LEAD.sub("", "，".join(clauses))
    return (rest or content.strip())[:120]


# ------------------------------------------------------------------------------------------------ reading
class WorkOrderError(ValueError):
    """The file cannot be read as a work-order sheet (HTTP 422 / CLI error)."""

    status, code = 422, "invalid_sheet"


class SheetTooLarge(WorkOrderError):
    """The sheet holds more rows, or inflates to more bytes, than an import takes (HTTP 413 / CLI error)."""

    status, code = 413, "sheet_too_large"


@dataclass
class RowError:
    row: int  # the sheet's row number (the header is row 1)
    error: str


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)


# stage ("reading", "checking", "embedding", "answering", "saving"), rows done, rows in all (0: not known yet)
Progress = Callable[[str, int, int], None]
PROGRESS_EVERY = 500
EMBED_BATCH = 256
ANSWER_PROGRESS_EVERY = 20  # each ticket is one question asked of the knowledge base (tens of ms)
_TOO_MANY_ROWS = f"一次最多导入 {MAX_ROWS} 行 / at most {MAX_ROWS} rows per file"
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")


def _is_xlsx(name: str) -> bool:
    return name.lower().endswith((".xlsx", ".xlsm"))


def check_sheet(data: bytes, filename: str) -> None:
    """What can be known without parsing cells, in well under a second for any upload: the file type and, for a
    workbook, the zip directory (inflated size, compression ratio) and the row elements of every worksheet, counted
    in the inflated stream and given up on at the limit. Raises WorkOrderError / SheetTooLarge."""
    name = filename.lower()
    if not name.endswith((".xlsx", ".xlsm", ".csv", ".txt")):
        raise WorkOrderError("仅支持 CSV 或 XLSX 文件 / only .csv and .xlsx files are accepted")
    if not _is_xlsx(name):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
            _check_inflation(members)
            for info in members:
                if "worksheets/" in info.filename and info.filename.endswith(".xml"):
                    with z.open(info) as stream:
                        _check_row_elements(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as e:
        raise WorkOrderError(f"无法读取该 XLSX 文件 / not a readable XLSX file: {e}") from e


def _check_inflation(members: list[zipfile.ZipInfo]) -> None:
    inflated = sum(i.file_size for i in members)
    if inflated > MAX_INFLATED_BYTES:
        limit = MAX_INFLATED_BYTES // (1024 * 1024)
        raise SheetTooLarge(f"表格解压后超过 {limit} MB / the workbook inflates to {inflated / 1024 / 1024:.0f} MB, "
                            f"more than {limit} MB; {_TOO_MANY_ROWS}")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECKED_FROM and ratio > MAX_COMPRESSION_RATIO:
            raise SheetTooLarge(
                f"表格压缩比异常（{ratio:.0f} 倍，正常表格为 5–15 倍），疑为填充的空行 / {info.filename} inflates {ratio:.0f}x "
                f"(a real sheet: 5-15x, at most {MAX_COMPRESSION_RATIO}x): padded rows? {_TOO_MANY_ROWS}")


def _check_row_elements(stream) -> None:
    rows, tail = 0, b""
    while chunk := stream.read(1 << 20):
        window = tail + chunk
        rows += len(_ROW_TAG.findall(window)) - len(_ROW_TAG.findall(tail))
        if rows > MAX_SHEET_ROWS:
            raise SheetTooLarge(f"表格超过 {MAX_SHEET_ROWS} 行 / the sheet has more than {MAX_SHEET_ROWS} rows; {_TOO_MANY_ROWS}")
        tail = window[-16:]


def read_rows(data: bytes, filename: str, progress: Progress | None = None) -> tuple[list[str], list[list[object]]]:
    """(headers, data rows) of a CSV (UTF-8 ± BOM, GBK/GB18030) or XLSX file, read as a stream that stops at the
    row limit (SheetTooLarge) rather than after the last row."""
    check_sheet(data, filename)
    if _is_xlsx(filename):
        from openpyxl import load_workbook  # lazy: openpyxl costs 0.1 s at start-up, only reading XLSX needs it

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises several types for a file that is not a workbook
            raise WorkOrderError(f"无法读取该 XLSX 文件 / not a readable XLSX file: {e}") from e
        try:
            rows = _bounded(book.worksheets[0].iter_rows(max_col=MAX_COLUMNS, values_only=True), progress)
        finally:
            book.close()
    else:
        best = from_bytes(data).best()
        if best is None:
            raise WorkOrderError("无法识别文件编码 / cannot detect the file's text encoding")
        text = str(best)
        rows = _bounded(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")), progress)
    if not rows:
        raise WorkOrderError("文件中没有数据 / the file has no rows")
    headers = [str(h).strip() if h is not None else "" for h in rows[0]]
    return headers, rows[1:]


def _bounded(rows: Iterable[Iterable[object]], progress: Progress | None) -> list[list[object]]:
    """The non-empty rows (header first), each cut to MAX_COLUMNS; SheetTooLarge as soon as there are more data
    rows than MAX_ROWS, or more rows of any kind than MAX_SHEET_ROWS."""
    kept: list[list[object]] = []
    for seen, row in enumerate(rows, start=1):
        if seen > MAX_SHEET_ROWS:
            raise SheetTooLarge(f"表格超过 {MAX_SHEET_ROWS} 行 / the sheet has more than {MAX_SHEET_ROWS} rows; {_TOO_MANY_ROWS}")
        values = list(islice(row, MAX_COLUMNS))
        if any(v not in (None, "") for v in values):
            if len(kept) > MAX_ROWS:  # the header and MAX_ROWS data rows are kept already
                raise SheetTooLarge(_TOO_MANY_ROWS)
            kept.append(values)
        if progress is not None and seen % PROGRESS_EVERY == 0:
            progress("reading", len(kept), 0)
    return kept


def resolve_mapping(headers: list[str], mapping: dict[str, str] | None, remembered: dict[str, str] | None = None) -> dict[str, str]:
    """field -> header present in the sheet: the given mapping (its headers must exist), else the remembered
    one where its header exists, else the first default header found."""
    resolved: dict[str, str] = {}
    for name, candidates in DEFAULT_COLUMNS.items():
        wanted = (mapping or {}).get(name)
        if wanted:
            if wanted not in headers:
                raise WorkOrderError(f"表头中没有列“{wanted}”（{FIELD_LABELS[name]}）/ no column {wanted!r} for {name}")
            resolved[name] = wanted
            continue
        before = (remembered or {}).get(name)
        found = before if before in headers else next((c for c in candidates if c in headers), None)
        if found:
            resolved[name] = found
    missing = [FIELD_LABELS[f] for f in REQUIRED if f not in resolved]
    if missing:
        raise WorkOrderError(
            f"找不到必需的列：{'、'.join(missing)}（请在列映射中指定）/ required columns not found: {', '.join(missing)}"
        )
    return resolved


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
                 "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日", "%Y%m%d%H%M%S", "%Y.%m.%d")


def parse_time(value: object) -> datetime | None:
    """A 受理时间 cell (China Standard Time) as naive UTC; None when it is not a date."""
    if isinstance(value, datetime):
        local = value.replace(tzinfo=None)
    elif isinstance(value, date):
        local = datetime.combine(value, datetime.min.time())
    else:
        text = re.sub(r"\s+", " ", str(value or "")).strip()
        local = None
        for fmt in _DATE_FORMATS:
            try:
                local = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if local is None:
            return None
    return local - CST


def _cell(row: list[object], headers: list[str], header: str | None) -> str:
    if not header:
        return ""
    i = headers.index(header)
    value = row[i] if i < len(row) else None
    return "" if value is None else str(value).strip()


# ------------------------------------------------------------------------------------------------ import
Embed = Callable[[list[str]], np.ndarray]
Answers = Callable[[str], object]  # question -> an Answer (answered, citations)


class WorkOrderImporter:
    def __init__(self, kb: KnowledgeBase, embed: Embed | None = None, answers: Answers | None = None,
                 normalizer: QueryNormalizer | None = None):
        self.kb = kb
        self.store = WorkOrderStore(kb)
        self.embed = embed
        self.answers = answers
        self.normalizer = normalizer or QueryNormalizer()

    def run(self, data: bytes, filename: str, mapping: dict[str, str] | None = None, actor: str | None = None,
            progress: Progress | None = None) -> ImportReport:
        """Read, mask and store the sheet's tickets; `progress(stage, done, total)` is called along the way."""
        report = progress or (lambda stage, done, total: None)
        headers, rows = read_rows(data, filename, report)
        resolved = resolve_mapping(headers, mapping, self.store.mapping())
        result = ImportReport(rows=len(rows), mapping=resolved, headers=headers)
        orders: list[WorkOrder] = []
        for offset, row in enumerate(rows):
            if offset % PROGRESS_EVERY == 0:
                report("checking", offset, len(rows))
            number = offset + 2  # header is row 1
            order = self._order(row, headers, resolved, filename, actor, number, result)
            if order is not None:
                orders.append(order)
        known = self.store.known([o.ticket_no for o in orders])
        fresh = [o for o in orders if o.ticket_no not in known]
        self._enrich(fresh, report)
        report("saving", len(fresh), len(fresh))
        added, skipped = self.store.add(fresh)
        result.added, result.duplicates = added, len(orders) - added
        if orders:  # the mapping that read this export is the one staff see and reuse next time
            self.store.save_mapping(resolved, actor)
        return result

    def _order(self, row, headers, resolved, filename, actor, number, report) -> WorkOrder | None:
        content = _cell(row, headers, resolved.get("content"))
        if not content:
            report.errors.append(RowError(number, f"{FIELD_LABELS['content']}为空 / empty content"))
            return None
        if len(content) > MAX_CONTENT:
            report.errors.append(RowError(number, f"{FIELD_LABELS['content']}超过 {MAX_CONTENT} 字 / content too long"))
            return None
        i = headers.index(resolved["received_at"])
        raw_time = row[i] if i < len(row) else None
        received = parse_time(raw_time)
        if received is None:
            report.errors.append(RowError(number, f"{FIELD_LABELS['received_at']}无法识别：{mask(str(raw_time or ''))!s}"[:200]))
            return None
        ticket_no = _cell(row, headers, resolved.get("ticket_no"))
        if not ticket_no:
            if "ticket_no" in resolved:
                report.errors.append(RowError(number, f"{FIELD_LABELS['ticket_no']}为空 / empty ticket number"))
                return None
            ticket_no = "H" + hashlib.sha1(f"{received.isoformat()}|{content}".encode("utf-8")).hexdigest()[:20]
        masked = mask(content)
        question = ask_of(masked)
        return WorkOrder(
            ticket_no=mask(ticket_no)[:120], received_at=received, content=masked, question=question,
            normalized=self.normalizer.run(question).text if question.strip() else question,
            category=mask(_cell(row, headers, resolved.get("category")))[:200] or None,
            department=mask(_cell(row, headers, resolved.get("department")))[:200] or None,
            result=mask(_cell(row, headers, resolved.get("result"))) or None,
            source_file=filename[:400], imported_by=actor,
        )

    def _enrich(self, orders: list[WorkOrder], progress: Progress) -> None:
        """Query vectors (as the engine logs for a chat question) and whether the knowledge base answers."""
        if not orders:
            return
        if self.embed is not None:
            for start in range(0, len(orders), EMBED_BATCH):
                progress("embedding", start, len(orders))
                batch = orders[start : start + EMBED_BATCH]
                vectors = np.asarray(self.embed([o.normalized for o in batch]), dtype=np.float32)
                for o, v in zip(batch, vectors):
                    o.vector = v
        if self.answers is not None:
            cache: dict[str, tuple[bool, str | None]] = {}
            for done, o in enumerate(orders):
                if done % ANSWER_PROGRESS_EVERY == 0:
                    progress("answering", done, len(orders))
                if o.normalized not in cache:
                    answer = self.answers(o.question)
                    top = next((c for c in getattr(answer, "citations", []) if getattr(c, "kind", "") == "document"), None)
                    cache[o.normalized] = (bool(answer.answered), top.doc_id if top else None)
                o.kb_answered, o.top_doc_id = cache[o.normalized]
