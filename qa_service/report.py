"""The weekly report for the 政务公开 meeting: the period's figures, top questions, top unanswered questions (with
the FAQ / 建议主动公开 suggestion), FAQ entries published and retired, documents and versions added, as XLSX and
as printable HTML.

    data = WeeklyReport(kb).build(date(2026, 11, 23), date(2026, 11, 29))
    write_xlsx(data, Path("周报.xlsx")); write_html(data, Path("周报.html"))

`policyqa report --from 2026-11-23 --to 2026-11-29` writes both; the analytics page has a button for it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from knowledge_base.activity import Activity, DocumentChange, FaqChange
from knowledge_base.store import KnowledgeBase

from .analytics import CST, QuestionAnalytics, QuestionFilter, QuestionGroup
from .dashboard import CHANNEL_LABELS, CHANNELS, DashboardService

TEMPLATES = Path(__file__).parent / "templates"
TOP_QUESTIONS = 20
SUGGESTION_LABELS = {"publish": "建议主动公开", "faq": "建议编写FAQ", None: ""}
SECTIONS = ("概况", "高频问题", "未回答问题", "FAQ变化", "知识库变化")


@dataclass
class ReportData:
    since: date
    until: date
    generated_at: datetime
    figures: list[tuple[str, str]]
    top: list[QuestionGroup]
    unanswered: list[QuestionGroup]
    faq_published: list[FaqChange] = field(default_factory=list)
    faq_retired: list[FaqChange] = field(default_factory=list)
    documents: list[DocumentChange] = field(default_factory=list)


class WeeklyReport:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.analytics = QuestionAnalytics(kb)

    def build(self, since: date, until: date) -> ReportData:
        if since > until:
            raise ValueError("开始日期晚于结束日期 / 'from' is after 'to'")
        flt = QuestionFilter(kind="top", days=None, since=since, until=until, limit=TOP_QUESTIONS)
        board = DashboardService(self.kb, self.analytics).run(flt, groups=TOP_QUESTIONS)
        start, end = flt.window()
        activity = Activity(self.kb)
        changes = activity.faq_changes(start, end)
        documents = activity.document_changes(start, end)
        t = board.totals
        figures = [
            ("统计区间", f"{since.isoformat()} 至 {until.isoformat()}"),
            ("提问总数（含12345工单）", str(int(t["asks"]))),
            *[(f"　其中{CHANNEL_LABELS[c]}", str(int(t[f"asks_{c}"]))) for c in CHANNELS],
            ("知识库可回答率", f"{t['answer_rate'] * 100:.1f}%"),
            ("评价“有帮助”", str(int(t["helpful"]))),
            ("评价“没帮助”", str(int(t["unhelpful"]))),
            ("未回答问题组数", str(len(board.unanswered))),
            ("建议主动公开", str(sum(1 for g in board.unanswered if g.suggestion == "publish"))),
            ("新发布FAQ", str(sum(1 for c in changes if c.action == "publish"))),
            ("下线FAQ", str(sum(1 for c in changes if c.action == "retire"))),
            ("新增文件", str(sum(1 for d in documents if not d.new_version))),
            ("新版本", str(sum(1 for d in documents if d.new_version))),
        ]
        return ReportData(
            since=since, until=until, generated_at=datetime.now(), figures=figures, top=board.top,
            unanswered=board.unanswered,
            faq_published=[c for c in changes if c.action == "publish"],
            faq_retired=[c for c in changes if c.action == "retire"],
            documents=documents,
        )


def _channels(g: QuestionGroup) -> str:
    return "，".join(f"{CHANNEL_LABELS.get(c, c)} {n}" for c, n in g.channels.items())


def _local(at: datetime | None) -> str:
    return (at + CST).strftime("%Y-%m-%d %H:%M") if at else ""


def rows_of(data: ReportData) -> dict[str, tuple[list[str], list[list[object]]]]:
    """Each section as (header, rows): the XLSX sheets and the HTML tables are made from the same rows."""
    return {
        "概况": (["指标", "数值"], [list(f) for f in data.figures]),
        "高频问题": (
            ["排名", "代表问题", "次数", "渠道", "回答率", "其他问法"],
            [[i, g.representative, g.count, _channels(g), f"{g.answered_rate * 100:.0f}%",
              "；".join(e for e in g.examples if e != g.representative)[:500]] for i, g in enumerate(data.top, 1)],
        ),
        "未回答问题": (
            ["排名", "代表问题", "次数", "渠道", "建议", "其他问法"],
            [[i, g.representative, g.count, _channels(g), SUGGESTION_LABELS[g.suggestion],
              "；".join(e for e in g.examples if e != g.representative)[:500]] for i, g in enumerate(data.unanswered, 1)],
        ),
        "FAQ变化": (
            ["变化", "编号", "问题", "操作人", "时间"],
            [["新发布", c.faq_id, c.question, c.actor, _local(c.at)] for c in data.faq_published]
            + [["下线", c.faq_id, c.question, c.actor, _local(c.at)] for c in data.faq_retired],
        ),
        "知识库变化": (
            ["变化", "标题", "发布机构", "版本日期", "效力", "入库时间"],
            [["新版本" if d.new_version else "新增文件", d.title, d.publisher or "", d.version_date.isoformat() if d.version_date else "",
              d.validity, _local(d.ingested_at)] for d in data.documents],
        ),
    }


def xlsx_bytes(data: ReportData) -> bytes:
    from openpyxl import Workbook  # lazy: openpyxl costs 0.1 s at start-up, only writing XLSX needs it
    from openpyxl.styles import Alignment, Font  # lazy: as openpyxl above

    book = Workbook()
    book.remove(book.active)
    for title, (header, rows) in rows_of(data).items():
        sheet = book.create_sheet(title)
        sheet.append([f"政策问答周报 {data.since.isoformat()} 至 {data.until.isoformat()} · {title}"])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append(header)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        if not rows:
            sheet.append(["（本期无）"])
        for column, width in zip("ABCDEF", (14, 48, 10, 30, 16, 60)):
            sheet.column_dimensions[column].width = width
        for row in sheet.iter_rows(min_row=3):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def html_text(data: ReportData) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    return env.get_template("staff_report.html").render(data=data, sections=rows_of(data))


def write_xlsx(data: ReportData, path: Path) -> Path:
    path.write_bytes(xlsx_bytes(data))
    return path


def write_html(data: ReportData, path: Path) -> Path:
    path.write_text(html_text(data), encoding="utf-8")
    return path
