"""Personal information is masked before a question is logged or shown (个人信息保护法), keeping enough to group."""
from __future__ import annotations

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

# Not personal information: these stay as typed.
KEPT = [
    "身份证370102199003071235丢了",  # 18 digits, wrong check character (and no valid card): not an ID number
    "身份证370102199013071238",  # month 13
    "卡号6222021000112233440",  # fails the Luhn check
    "失业保险金领取期限最长24个月",
    "济政办发〔2024〕12号文件",
    "索引号11370100004188346K/2025-00123",
    "拨打12345热线",
    "2024年1月1日起施行",
    "补贴标准为每人每月1800元",
]


@pytest.mark.parametrize("typed,logged", MASKED)
def test_personal_information_is_masked_keeping_enough_to_group(typed: str, logged: str) -> None:
    assert mask_personal_info(typed) == logged


@pytest.mark.parametrize("typed", KEPT)
def test_policy_text_and_invalid_numbers_are_not_masked(typed: str) -> None:
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
