"""A 12345 export for the work-order tests: 220 tickets in hotline wording on 4 recurring intents, each with the
caller's ID and phone numbers in the narrative, plus 3 bad rows; and the chat questions of the same intents.

    rows, truth = ticket_rows(seed=7)       # truth[i] is the intent of data row i (None for the bad rows)
    write_xlsx(rows, path); write_csv(rows, path, encoding="gbk")
"""
from __future__ import annotations

import csv
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

HEADERS = ["工单编号", "受理时间", "来电内容", "诉求类型", "承办单位", "办理结果"]

# intent -> (ask wordings as the hotline writes them, backgrounds, 诉求类型, 承办单位, chat questions of the widget)
INTENTS = {
    "unemployment_duration": (
        ["咨询失业保险金最长可以领取多长时间", "询问失业金能领几个月", "想了解失业保险金的领取期限",
         "咨询失业保险金可以领多久", "询问失业后失业保险金能领取多长时间", "咨询失业金最多能领多少个月"],
        ["其于{y}年{m}月被单位解除劳动合同，已缴纳失业保险{n}年", "其所在公司{y}年{m}月倒闭，本人缴纳失业保险满{n}年",
         "本人{y}年{m}月离职，单位为其缴纳失业保险{n}年"],
        "咨询", "市人力资源和社会保障局",
        ["失业保险金能领多长时间？", "失业金领几个月", "失业保险金领取期限"],
    ),
    "housing_fund_rate": (
        ["咨询住房公积金缴存比例是多少", "询问单位缴存住房公积金的比例", "想了解公积金最低缴存比例",
         "咨询公积金按工资的多少比例缴纳", "询问住房公积金每月按多少比例缴存"],
        ["其在{y}年{m}月入职新单位", "来电人系某公司职工，工作{n}年", "其单位{y}年开始为职工缴存公积金"],
        "咨询", "市住房公积金管理中心",
        ["公积金交多少比例", "公积金缴存比例是多少", "住房公积金最低交多少"],
    ),
    "housing_fund_withdrawal": (
        ["咨询住房公积金在什么情况下可以提取", "询问离职后公积金能不能取出来", "想了解住房公积金提取条件",
         "咨询哪些情况可以提取住房公积金", "询问公积金怎样才能提取"],
        ["其准备于{y}年购房", "其已于{y}年{m}月离职", "来电人退休在即，缴存公积金{n}年"],
        "咨询", "市住房公积金管理中心",
        ["公积金什么情况下可以取出来", "住房公积金提取条件", "离职了公积金能取吗"],
    ),
    "social_security_card": (
        ["咨询社保卡丢失后去哪里补办", "询问社保卡丢了怎么补办", "想了解社保卡挂失补办需要什么材料",
         "咨询社会保障卡遗失如何补领", "询问补办社保卡要去哪个窗口"],
        ["其社保卡于{y}年{m}月不慎丢失", "来电人称钱包被盗，社保卡一并丢失", "其社保卡损坏无法使用"],
        "求助", "市医疗保障局",
        ["社保卡丢了怎么补办？", "社保卡掉了去哪补办"],
    ),
}
OPENINGS = ["来电人反映：", "市民来电反映，", "市民来电称：", "来电人表示，", ""]
CLOSINGS = ["请相关部门予以解答。", "希望有关部门尽快答复。", "", "请职能部门核实处理。"]
CONTACTS = ["来电号码{phone}。", "联系电话{phone}，身份证号{idno}。", "身份证号码{idno}。", "联系方式：{landline}。"]
TICKETS_PER_INTENT = 55


def _id_number(rng: random.Random) -> str:
    body = f"{rng.choice(['370102', '370105', '331002'])}{rng.randint(1960, 2002)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + rng.choice("0123456789X")


def ticket_rows(seed: int = 7, start: datetime | None = None) -> tuple[list[list[str]], list[str | None]]:
    rng = random.Random(seed)
    # midnight 13 days ago: the same sheet (ticket numbers carry the date) whenever it is built on one day, so a
    # re-import minutes after the first one finds every ticket a duplicate
    start = start or (datetime.now() - timedelta(days=13)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows, truth = [], []
    n = 0
    for intent, (asks, backgrounds, kind, unit, _chats) in INTENTS.items():
        for i in range(TICKETS_PER_INTENT):
            n += 1
            background = rng.choice(backgrounds).format(y=rng.randint(2019, 2025), m=rng.randint(1, 12), n=rng.randint(1, 12))
            contact = rng.choice(CONTACTS).format(
                phone=f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}", idno=_id_number(rng),
                landline=f"0531-{rng.randint(80000000, 89999999)}",
            )
            content = f"{rng.choice(OPENINGS)}{background}，{rng.choice(asks)}。{contact}{rng.choice(CLOSINGS)}"
            when = start + timedelta(days=rng.randint(0, 12), hours=rng.randint(8, 19), minutes=rng.randint(0, 59))
            rows.append([f"RX{when:%Y%m%d}{n:05d}", when.strftime("%Y-%m-%d %H:%M:%S"), content, kind, unit, "已答复来电人"])
            truth.append(intent)
    order = list(range(len(rows)))
    rng.shuffle(order)
    rows, truth = [rows[i] for i in order], [truth[i] for i in order]
    # Bad rows, at known positions: no content, an unreadable time, no ticket number.
    rows.insert(5, ["RX-BAD-1", "2026-11-20 10:00:00", "", "咨询", "市医疗保障局", ""])
    truth.insert(5, None)
    rows.insert(40, ["RX-BAD-2", "上周三", "市民来电咨询公积金缴存比例。", "咨询", "市住房公积金管理中心", ""])
    truth.insert(40, None)
    rows.insert(100, ["", "2026-11-21 09:00:00", "市民来电咨询社保卡补办。", "咨询", "市医疗保障局", ""])
    truth.insert(100, None)
    return rows, truth


def chat_questions() -> dict[str, list[str]]:
    return {intent: spec[4] for intent, spec in INTENTS.items()}


def write_xlsx(rows: list[list[str]], path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(rows: list[list[str]], path: Path, encoding: str = "utf-8-sig", headers: list[str] | None = None) -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers or HEADERS)
        writer.writerows(rows)
    return path


def padded_xlsx(rows: int, varied: bool = False) -> bytes:
    """A workbook (bytes) whose first sheet holds the header and `rows` copies of one ticket, written straight into
    sheet1.xml without a <dimension> (as a hand-made file would be) and deflated at level 9. Identical rows inflate
    about 250x (1,000,000 rows: 600 kB); `varied` rows (their own ticket number and digits) about 8x, like a real
    export."""
    import io
    import zipfile

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(HEADERS)
    template = io.BytesIO()
    book.save(template)
    source = zipfile.ZipFile(io.BytesIO(template.getvalue()))
    head, rest = source.read("xl/worksheets/sheet1.xml").decode("utf-8").split("<sheetData>")
    head = re.sub(r"<dimension [^>]*/>", "", head)
    header_row, tail = rest.split("</sheetData>")

    def cell(text: str) -> str:
        return f'<c t="inlineStr"><is><t>{text}</t></is></c>'

    rng = random.Random(23)
    body = "".join(
        "<row>" + cell(f"RX{n:08d}" if varied else "RX") + cell("2025-03-01 10:00:00")
        + cell(f"市民来电咨询失业保险金能领多久，已缴费{rng.randint(1, 99)}个月，编号{rng.getrandbits(40):x}" if varied else "市民来电咨询失业保险金能领多久")
        + "</row>"
        for n in range(rows)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in source.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                z.writestr(info.filename, f"{head}<sheetData>{header_row}{body}</sheetData>{tail}")
            else:
                z.writestr(info.filename, source.read(info.filename))
    return out.getvalue()


def wait_for_import(client, started, headers: dict[str, str], timeout: float = 600) -> dict:
    """The finished job of a POST /v1/workorders/import (202), polled as the staff page polls it."""
    import time

    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + timeout  # only so a stuck job fails the test instead of hanging it
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/v1/workorders/jobs/{job['id']}", headers=headers).json()
    return job
