"""Masking personal information (个人信息) before a question is logged or shown in analytics.

    from knowledge_base.privacy import mask_personal_info
    mask_personal_info("我的手机13812345678，身份证370102199003071234")
    # → "我的手机1381234****，身份证370102************"

Citizens type their ID-card, phone and bank-card numbers into chat boxes; 个人信息保护法 says the query
log must not keep them. Answering still uses the text as typed: only what is stored or displayed is masked.
Each kind keeps enough to group similar questions (the mobile prefix, the ID's 6-digit area code, the card's
issuer number, the e-mail domain, the plate's province and city letter) and nothing that identifies a person.

A number is masked as an ID card only when it is one: 18 digits whose ISO 7064 check character matches, or the
old 15-digit form with a plausible birth date; a bank card only when its Luhn digit matches. Other long numbers
(发文字号, 索引号, amounts) are policy text and stay readable.

12345 work orders use the same rules through `label_personal_info`, which writes a label per kind instead
("[身份证号]", "[手机号]" …: the ask is cut out of the narrative around them) and, with `checked=False`, takes a
number of the right shape as personal even when its check digit fails: a ticket is the operator's note of what the
caller said, a mistyped ID number is still somebody's, and a ticket quotes no 文号 or 索引号.

    label_personal_info("身份证号370102199003151234，手机13812345678", checked=False)
    # → "身份证号[身份证号]，手机[手机号]"
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MASK = "*"


class PersonalInfoKind(str, enum.Enum):
    ID_CARD = "id_card"  # 居民身份证号码
    MOBILE = "mobile"  # 手机号
    LANDLINE = "landline"  # 固定电话
    BANK_CARD = "bank_card"  # 银行卡号
    EMAIL = "email"  # 电子邮箱
    LICENSE_PLATE = "license_plate"  # 车牌号


@dataclass(frozen=True)
class PersonalInfoMatch:
    kind: PersonalInfoKind
    start: int
    end: int
    masked: str  # what replaces text[start:end]


# Full-width digits (１３８…) are typed by some input methods; they are personal information just the same.
_D = "[0-9０-９]"
_NOT_DIGIT_BEFORE = r"(?<![0-9０-９A-Za-z])"
_NOT_DIGIT_AFTER = r"(?![0-9０-９A-Za-z])"
_SEP = r"[\s\-－]?"

_ID_18 = re.compile(_NOT_DIGIT_BEFORE + f"{_D}{{17}}[0-9０-９Xx]" + _NOT_DIGIT_AFTER)
_ID_15 = re.compile(_NOT_DIGIT_BEFORE + f"{_D}{{15}}" + _NOT_DIGIT_AFTER)
_CARD = re.compile(_NOT_DIGIT_BEFORE + f"{_D}{{4}}(?:{_SEP}{_D}{{4}}){{2}}{_SEP}{_D}{{4,7}}" + _NOT_DIGIT_AFTER)
_CARD_PLAIN = re.compile(_NOT_DIGIT_BEFORE + f"{_D}{{16,19}}" + _NOT_DIGIT_AFTER)
_MOBILE = re.compile(
    _NOT_DIGIT_BEFORE + r"(?:(?:\+|＋)?86[\s\-]?)?" + f"([1１][3-9３-９]{_D}){_SEP}({_D}{{4}}){_SEP}({_D}{{4}})" + _NOT_DIGIT_AFTER
)
# Area code 0xx / 0xxx, then a 7- or 8-digit number; a separator or parentheses are how people write it.
_LANDLINE = re.compile(
    _NOT_DIGIT_BEFORE + r"(?:[(（]?(0[1-9]\d{1,2})[)）]?[\s\-－]?)([2-9]\d{6,7})" + _NOT_DIGIT_AFTER
)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
_PLATE = re.compile(f"([{_PROVINCES}][A-HJ-NP-Z])[·・.\\s]?([A-HJ-NP-Z0-9]{{4}}[A-HJ-NP-Z0-9挂学警港澳]|[DF][A-HJ-NP-Z0-9]{{5}}|[A-HJ-NP-Z0-9]{{5}}[DF])(?![A-Za-z0-9])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text.translate(_FULLWIDTH))


def is_valid_id_card(number: str) -> bool:
    """18-digit 居民身份证号码 with a matching GB 11643 check character, or the 15-digit form (no check character)
    with a real month and day."""
    n = number.translate(_FULLWIDTH).upper()
    if re.fullmatch(r"\d{17}[\dX]", n):
        total = sum(int(d) * w for d, w in zip(n[:17], _ID_WEIGHTS))
        return _ID_CHECK[total % 11] == n[17] and _plausible_birth(n[10:12], n[12:14])
    if re.fullmatch(r"\d{15}", n):
        return _plausible_birth(n[8:10], n[10:12])
    return False


def _plausible_birth(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def is_luhn_valid(number: str) -> bool:
    digits = [int(d) for d in _digits(number)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return bool(digits) and total % 10 == 0


LABELS = {
    PersonalInfoKind.ID_CARD: "[身份证号]", PersonalInfoKind.MOBILE: "[手机号]", PersonalInfoKind.LANDLINE: "[电话]",
    PersonalInfoKind.BANK_CARD: "[卡号]", PersonalInfoKind.EMAIL: "[邮箱]", PersonalInfoKind.LICENSE_PLATE: "[车牌号]",
}


def _plausible_id(number: str) -> bool:
    """ID-card shaped: 18 digits (or 17 + X) with a birth date in 1800–2099, or 15 digits with a real month and day."""
    n = number.translate(_FULLWIDTH).upper()
    if len(n) == 18:
        return n[6:8] in ("18", "19", "20") and _plausible_birth(n[10:12], n[12:14])
    return _plausible_birth(n[8:10], n[10:12])


def find_personal_info(text: str, checked: bool = True) -> list[PersonalInfoMatch]:
    """Every piece of personal information in `text`, left to right, without overlaps (the first rule that claims
    a span keeps it: ID card before bank card before phone numbers). `checked=False` drops the check-digit tests
    (ID card, bank card): a number of the right shape is taken as personal (work orders)."""
    found: list[PersonalInfoMatch] = []
    taken: list[tuple[int, int]] = []

    def claim(kind: PersonalInfoKind, m: re.Match, masked: str) -> None:
        s, e = m.span()
        if any(s < te and ts < e for ts, te in taken):
            return
        taken.append((s, e))
        found.append(PersonalInfoMatch(kind, s, e, masked))

    for pattern in (_ID_18, _ID_15):
        for m in pattern.finditer(text):
            if is_valid_id_card(m.group()) or (not checked and m.group()[0] not in "0０" and _plausible_id(m.group())):
                claim(PersonalInfoKind.ID_CARD, m, m.group()[:6] + MASK * (len(m.group()) - 6))
    for pattern in (_CARD, _CARD_PLAIN):
        for m in pattern.finditer(text):
            digits = _digits(m.group())
            if 16 <= len(digits) <= 19 and (is_luhn_valid(digits) or not checked):
                claim(PersonalInfoKind.BANK_CARD, m, digits[:6] + MASK * (len(digits) - 10) + digits[-4:])
    for m in _MOBILE.finditer(text):
        claim(PersonalInfoKind.MOBILE, m, _digits("".join(m.groups()))[:7] + MASK * 4)
    for m in _LANDLINE.finditer(text):
        area, number = m.group(1), m.group(2)
        claim(PersonalInfoKind.LANDLINE, m, f"{area}-{number[:-4]}{MASK * 4}")
    for m in _EMAIL.finditer(text):
        claim(PersonalInfoKind.EMAIL, m, f"{m.group(1)}{MASK * 3}@{m.group(2)}")
    for m in _PLATE.finditer(text):
        claim(PersonalInfoKind.LICENSE_PLATE, m, m.group(1) + MASK * len(m.group(2)))
    return sorted(found, key=lambda f: f.start)


def _replaced(text: str, found: list[PersonalInfoMatch], replacement) -> str:
    out, last = [], 0
    for f in found:
        out.append(text[last : f.start])
        out.append(replacement(f))
        last = f.end
    out.append(text[last:])
    return "".join(out)


def mask_personal_info(text: str | None) -> str | None:
    """`text` with every piece of personal information replaced by its masked form (None stays None)."""
    if not text:
        return text
    return _replaced(text, find_personal_info(text), lambda f: f.masked)


def label_personal_info(text: str | None, checked: bool = True) -> str | None:
    """`text` with every piece of personal information replaced by the label of its kind ("[手机号]")."""
    if not text:
        return text
    return _replaced(text, find_personal_info(text, checked), lambda f: LABELS[f.kind])
