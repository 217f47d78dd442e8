"""Personal information is masked before a question is logged or shown (个人信息保护法), keeping enough to group."""
from __future__ import annotations

import re

import pytest

from knowledge_base.privacy import PersonalInfoKind, find_personal_info, is_valid_id_card, mask_personal_info

# (what the citizen typed, what the log keeps)
MASKED = [
    # 身份证号: 18 digits with a valid check character (digit or X), the 15-digit form
    ("身份证370102199003071238丢了怎么补办", "身份证370102************丢了怎么补办"),
    ("我的身份证号是11010519491231002X", "我的身份证号是110105************"),
    ("身份证号11010519491231002x能办吗", "身份证号110105************能办吗"),
    ("老身份证370102900307123还能用吗", "老身份证370102*********还能用吗"),
    # mobile numbers, with or without separators and +86
    ("我的手机13812345678，请回电", "我的手机1381234****，请回电"),
    ("电话 138-1234-5678 或 +86 139 8765 4321", "电话 1381234**** 或 1398765****"),
    ("手机１３８１２３４５６７８", "手机1381234****"),
    # landlines
    ("单位电话0531-86081234", "单位电话0531-8608****"),
    ("打（0576）88812345咨询", "打0576-8881****咨询"),
    # bank cards (Luhn-valid), plain or in groups of four
    ("卡号6222021000112233449能领失业金吗", "卡号622202*********3449能领失业金吗"),
    ("6217 0012 3456 7893 这张卡", "621700******7893 这张卡"),
    # e-mail and plates
    ("发到zhang.san@example.com.cn", "发到z***@example.com.cn"),
    ("车牌鲁A12345被贴条", "车牌鲁A*****被贴条"),
    ("新能源车浙JD12345充电补贴", "新能源车浙J******充电补贴"),
    ("鲁A·B1234年检", "鲁A*****年检"),
]

# Formatted or mistyped: still the citizen's number (issue 23). An ID typed in groups, a 19-digit card in groups of
# four, an ID whose check digit is wrong, a card number failing the Luhn check, an ID whose month is a typo.
FORMATTED = [
    ("身份证370102 19900307 1238丢了怎么办", "身份证370102************丢了怎么办"),
    ("身份证号370102-19900307-1238能补办吗", "身份证号370102************能补办吗"),
    ("身份证 3701 0219 9003 0712 38 2019年办的", "身份证 370102************ 2019年办的"),
    ("卡号6222 0210 0011 2233 449能领失业金吗", "卡号622202*********3449能领失业金吗"),
    ("卡号６２２２－０２１０－００１１－２２３３－４４９", "卡号622202*********3449"),
    ("身份证370102199001011237丢了", "身份证370102************丢了"),
    ("身份证370102 19900101 123x丢了", "身份证370102************丢了"),
    ("卡号6222021000112233440能领失业金吗", "卡号622202*********3440能领失业金吗"),
    ("身份证370102199013071238", "身份证370102********1238"),  # month 13: no ID, but a card number's shape
]
MASKED += FORMATTED

# Not personal information: these stay as typed, in the query log and in tickets.
KEPT = [
    "失业保险金领取期限最长24个月",
    "济政办发〔2024〕12号文件",
    "鲁政办发〔2024〕12号的补贴标准",
    "国务院令第711号第十二条",
    "索引号11370100004188346K/2025-00123",
    "索引号：11370100004188135F/2025-00123 的文件",
    "拨打12345热线",
    "2024年1月1日起施行",
    "2024-01-01 2024-12-31期间",
    "补贴标准为每人每月1800元",
    "补贴 1800 2000 3000 4000 元",
]
# Long numbers that are not shaped like an ID or a card: a citizen's question keeps them (a ticket does not, below).
KEPT_IN_QUESTIONS = [
    "索引号113701000041881350/2025-00123",  # a 统一社会信用代码 of digits only: no birth date, opens with 1
    "订单号2024010112345678的缴费记录",
]


@pytest.mark.parametrize("typed,logged", MASKED)
def test_personal_information_is_masked_keeping_enough_to_group(typed: str, logged: str) -> None:
    assert mask_personal_info(typed) == logged


@pytest.mark.parametrize("typed", KEPT + KEPT_IN_QUESTIONS)
def test_policy_text_and_numbers_of_no_personal_shape_are_not_masked(typed: str) -> None:
    assert mask_personal_info(typed) == typed


@pytest.mark.parametrize(
    "number,valid",
    [("370102199003071238", True), ("11010519491231002X", True), ("370102199003071235", False),
     ("370102900307123", True), ("370102901307123", False), ("37010219900307123", False)],
)
def test_id_card_check_character(number: str, valid: bool) -> None:
    assert is_valid_id_card(number) is valid


def test_each_match_names_its_kind() -> None:
    kinds = [m.kind for m in find_personal_info("13812345678 370102199003071238 a@b.cn 鲁A12345 6217001234567893")]
    assert kinds == [PersonalInfoKind.MOBILE, PersonalInfoKind.ID_CARD, PersonalInfoKind.EMAIL,
                     PersonalInfoKind.LICENSE_PLATE, PersonalInfoKind.BANK_CARD]


def test_empty_text_stays_empty() -> None:
    assert mask_personal_info("") == "" and mask_personal_info(None) is None


# ------------------------------------------------------------------ the query log keeps masked text only
@pytest.fixture(scope="module")
def served(small_kb, tmp_path_factory):
    import shutil

    from fastapi.testclient import TestClient

    from knowledge_base.settings import Settings
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app
    from qa_service.auth import KeyService, Role

    kb_dir = shutil.copytree(small_kb, tmp_path_factory.mktemp("privacy") / "kb")
    kb = KnowledgeBase(kb_dir)
    operator = KeyService(kb).create("周话务", Role.OPERATOR).token
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0))) as client:
        yield client, kb, {"Authorization": f"Bearer {operator}"}


def test_answers_use_the_text_as_typed_but_the_log_and_analytics_keep_it_masked(served):
    from knowledge_base.query_log import QueryLogRepository

    client, kb, staff = served
    typed = "失业保险金能领多久？我的手机13812345678，身份证370102199003071238"
    r = client.post("/v1/ask", json={"question": typed})
    assert r.status_code == 200
    answer = r.json()
    logged = QueryLogRepository(kb).get(answer["query_id"])
    assert "13812345678" not in logged.question and "1381234****" in logged.question
    assert "370102199003071238" not in logged.question + logged.normalized and "370102************" in logged.question
    groups = client.get("/v1/analytics/questions", params={"kind": "top", "days": 1}, headers=staff).json()["groups"]
    shown = " ".join(g["representative"] + " ".join(g["examples"]) for g in groups)
    assert "1381234****" in shown and "13812345678" not in shown


@pytest.mark.parametrize("typed,logged", FORMATTED)
def test_formatted_or_mistyped_numbers_are_masked_in_the_query_log(served, typed: str, logged: str):
    from knowledge_base.query_log import QueryLogRepository

    client, kb, _ = served
    r = client.post("/v1/ask", json={"question": typed})
    assert r.status_code == 200, r.text
    entry = QueryLogRepository(kb).get(r.json()["query_id"])
    number = re.search(r"[0-9０-９][0-9０-９\s\-－]{13,}[0-9０-９Xx]", typed).group()
    digits = re.sub(r"[\s\-－]", "", number)
    for stored in (entry.question, entry.normalized):
        assert number not in stored and digits[6:-4] not in re.sub(r"[\s\-－]", "", stored), stored
    assert entry.question == logged


def test_document_numbers_in_a_question_are_logged_as_typed(served):
    from knowledge_base.query_log import QueryLogRepository

    client, kb, _ = served
    typed = "鲁政办发〔2024〕12号和国务院令第711号说了什么？索引号11370100004188135F/2025-00123"
    r = client.post("/v1/ask", json={"question": typed})
    assert r.status_code == 200, r.text
    assert QueryLogRepository(kb).get(r.json()["query_id"]).question == typed


def test_the_widget_asks_citizens_not_to_type_personal_information(served):
    client, _, _ = served
    assert "请勿输入身份证号、手机号" in client.get("/widget.js").text


def test_retention_deletes_old_questions_and_their_feedback_only(tmp_path):
    from datetime import timedelta

    from knowledge_base.db import FeedbackRow, utcnow
    from knowledge_base.query_log import QueryLogEntry, QueryLogRepository
    from knowledge_base.store import KnowledgeBase

    kb = KnowledgeBase(tmp_path / "kb")
    log = QueryLogRepository(kb)
    now = utcnow()
    for query_id, age in (("old", 181), ("recent", 179)):
        log.add(QueryLogEntry(query_id=query_id, question="春节放几天假", normalized="春节放几天假", channel="web",
                              answered=True, confidence=0.9, latency_ms=20.0, at=now - timedelta(days=age)))
    with kb.session() as s:
        s.add(FeedbackRow(query_id="old", helpful=False))
        s.commit()
    assert log.delete_older_than(180) == 1
    assert log.get("old") is None and log.get("recent") is not None
    with kb.session() as s:
        assert s.query(FeedbackRow).count() == 0


def test_the_server_prunes_the_log_when_it_starts(tmp_path):
    import time
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from knowledge_base.db import utcnow
    from knowledge_base.query_log import QueryLogEntry, QueryLogRepository
    from knowledge_base.settings import Settings
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    kb = KnowledgeBase(tmp_path / "kb")
    log = QueryLogRepository(kb)
    log.add(QueryLogEntry(query_id="ancient", question="旧问题", normalized="旧问题", channel="web", answered=False,
                          confidence=0.1, latency_ms=20.0, at=utcnow() - timedelta(days=400)))
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0, log_retention_days=180))):
        deadline = time.monotonic() + 10
        while log.get("ancient") is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert log.get("ancient") is None


# ------------------------------------------------------------------ 12345 work orders: the same rules, labelled
POLICY_TEXT = KEPT  # no number in these is personal under any rule


@pytest.mark.parametrize("typed,logged", MASKED)
def test_work_orders_mask_what_the_query_log_masks(typed: str, logged: str) -> None:
    from knowledge_base.privacy import LABELS, label_personal_info
    from qa_service.workorders import mask

    log_spans = [(f.kind, f.start, f.end) for f in find_personal_info(typed)]
    ticket_spans = [(f.kind, f.start, f.end) for f in find_personal_info(typed, checked=False)]
    assert ticket_spans == log_spans and log_spans
    labelled = mask(typed)
    assert labelled == label_personal_info(typed)
    kinds = [k for k, _, _ in log_spans]
    assert [LABELS[k] for k in kinds] == re.findall(r"\[[^\]]+\]", labelled)
    assert typed[: log_spans[0][1]] == logged[: log_spans[0][1]] == labelled[: log_spans[0][1]]  # the text around stays


@pytest.mark.parametrize("typed", POLICY_TEXT)
def test_work_orders_keep_policy_text_like_the_log(typed: str) -> None:
    from qa_service.workorders import mask

    assert mask(typed) == mask_personal_info(typed) == typed


def test_a_ticket_takes_any_long_number_for_a_card_where_the_log_keeps_it() -> None:
    from qa_service.workorders import mask

    # A ticket quotes no 索引号 or order number: 16-19 digits there are taken as the caller's card number.
    for typed in KEPT_IN_QUESTIONS:
        assert mask_personal_info(typed) == typed
        assert "[卡号]" in mask(typed) and not re.search(r"\d{16}", mask(typed))
    assert mask("身份证370102199003071235丢了") == "身份证[身份证号]丢了"
    assert mask("卡号6222021000112233440") == "卡号[卡号]"
    # Month 13 is no birth date, but 16-19 digits are taken as a card number all the same.
    assert mask("身份证370102199013071238") == "身份证[卡号]"
