"""Masking personal information (个人信息) before a question is logged or shown in analytics.

    from knowledge_base.privacy import mask_personal_info
    mask_personal_info("我的手机13812345678，身份证370102199003071234")
    # → "我的手机1381234****，身份证370102************"

Citizens type their ID-card, phone and bank-card numbers into chat boxes; 个人信息保护法 says the query
log must not keep them. Answering still uses the text as typed: only what is stored or displayed is masked.
Each kind keeps enough to group similar questions (the mobile prefix, the ID's 6-digit area code, the card's
issuer number, the e-mail domain, the plate's province and city letter) and nothing that identifies a person.

A number is masked as an ID card when it is shaped like one: 18 digits (or 17 and X) opening with a province code
and a plausible birth date, or the old 15-digit form; or when its ISO 7064 check character matches. It is masked as
a bank card when its Luhn digit matches or when it opens like a card number (3-6, 95). The check digit alone does
not decide: a citizen's typo is still that citizen's number. Numbers typed in groups ("370102 19900307 1238",
"6222 0210 0011 2233 449") are read as the number they spell. 发文字号 (国务院令第711号, 鲁政办发〔2024〕12号), 索引号
(11370100004188135F/2025-00123: the 统一社会信用代码 of a 机关 or 事业单位 opens with 11 or 12 and has no birth date
where an ID has one) and amounts stay readable.

12345 work orders use the same rules through `label_personal_info`, which writes a label per kind instead
("[身份证号]", "[手机号]" …: the ask is cut out of the narrative around them) and, with `checked=False`, also takes
any 16-19 digits as a card number: a ticket is the operator's note of what the caller said and quotes no 索引号.

    label_personal_info("身份证号370102199003151234，手机13812345678", checked=False)
    # → "身份证号[身份证号]，手机[手机号]"
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator

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
# A number typed in groups of 2-8 digits with single spaces or hyphens between them (an ID as 6-8-4, a card as 4-4-4-4-3).
_GROUP_SEP = r"[\s\-－]"
_GROUPED = re.compile(
    _NOT_DIGIT_BEFORE + f"{_D}{{2,8}}(?:{_GROUP_SEP}{_D}{{2,8}})*{_GROUP_SEP}(?:{_D}{{2,8}}|{_D}{{1,7}}[Xx])" + _NOT_DIGIT_AFTER
)
_GROUP = re.compile(f"{_D}+[Xx]?")
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

# GB/T 2260 province-level codes that open a 居民身份证号码 (71 Taiwan; 81, 82, 83 the residence permits of Hong
# Kong, Macau and Taiwan residents, numbered like ID cards).
_PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)
# A card number opens with its network's digit: 3 (JCB, American Express), 4 (Visa), 5 (Mastercard), 6 (银联 62,
# 中国银行 60) or 95 (the older domestic cards, 9558 …). Not so the 统一社会信用代码 of a 机关 (11…), 事业单位 (12…) or
# enterprise (91-93…), nor an order number, which opens with the year.
_CARD_START = re.compile(r"(?:[3-6]|95)")
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


def is_id_shaped(number: str) -> bool:
    """Shaped like a 居民身份证号码 whatever its check character: a province code, then a birth date (a year from 1900
    to this one, a real month and day), or the 15-digit form with a province code and a real month and day."""
    n = number.translate(_FULLWIDTH).upper()
    if n[:2] not in _PROVINCE_CODES:
        return False
    if re.fullmatch(r"\d{17}[\dX]", n):
        return 1900 <= int(n[6:10]) <= date.today().year and _plausible_birth(n[10:12], n[12:14])
    return bool(re.fullmatch(r"\d{15}", n)) and _plausible_birth(n[8:10], n[10:12])


def _is_id(number: str, checked: bool) -> bool:
    if is_valid_id_card(number) or is_id_shaped(number):
        return True
    return not checked and number[0] not in "0０" and _plausible_id(number)


def _is_card(digits: str, checked: bool) -> bool:
    return 16 <= len(digits) <= 19 and (is_luhn_valid(digits) or bool(_CARD_START.match(digits)) or not checked)


def _grouped_numbers(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, number) of each run of consecutive groups in a grouped number that spells 15-19 characters,
    the longest first from each group: "身份证 370102 19900307 1238 2024年办的" holds "370102199003071238"."""
    for run in _GROUPED.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end(), g.group()) for g in _GROUP.finditer(run.group())]
        for i in range(len(groups)):
            for j in range(len(groups) - 1, i, -1):
                number = "".join(g for _, _, g in groups[i : j + 1]).translate(_FULLWIDTH)
                if 15 <= len(number) <= 19:
                    yield groups[i][0], groups[j][1], number


def find_personal_info(text: str, checked: bool = True) -> list[PersonalInfoMatch]:
    """Every piece of personal information in `text`, left to right, without overlaps (the first rule that claims
    a span keeps it: ID card before bank card before phone numbers). `checked=False` (work orders) also takes any
    16-19 digits written as one number as a card, and 18 digits with any plausible birth date as an ID."""
    found: list[PersonalInfoMatch] = []
    taken: list[tuple[int, int]] = []

    def claim(kind: PersonalInfoKind, s: int, e: int, masked: str) -> None:
        if any(s < te and ts < e for ts, te in taken):
            return
        taken.append((s, e))
        found.append(PersonalInfoMatch(kind, s, e, masked))

    grouped = list(_grouped_numbers(text))
    for pattern in (_ID_18, _ID_15):
        for m in pattern.finditer(text):
            if _is_id(m.group(), checked):
                claim(PersonalInfoKind.ID_CARD, *m.span(), m.group()[:6] + MASK * (len(m.group()) - 6))
    for s, e, number in grouped:
        if len(number) in (15, 18) and _is_id(number, checked):
            claim(PersonalInfoKind.ID_CARD, s, e, number[:6] + MASK * (len(number) - 6))
    # A grouped number is a card only when it reads as one, in tickets too: "2024-01-01 2024-12-31" is two dates.
    cards = [(*m.span(), _digits(m.group()), checked) for m in _CARD_PLAIN.finditer(text)]
    for s, e, digits, strict in cards + [(s, e, n, True) for s, e, n in grouped if n.isdigit()]:
        if _is_card(digits, strict):
            claim(PersonalInfoKind.BANK_CARD, s, e, digits[:6] + MASK * (len(digits) - 10) + digits[-4:])
    for m in _MOBILE.finditer(text):
        claim(PersonalInfoKind.MOBILE, *m.span(), _digits("".join(m.groups()))[:7] + MASK * 4)
    for m in _LANDLINE.finditer(text):
        area, number = m.group(1), m.group(2)
        claim(PersonalInfoKind.LANDLINE, *m.span(), f"{area}-{number[:-4]}{MASK * 4}")
    for m in _EMAIL.finditer(text):
        claim(PersonalInfoKind.EMAIL, *m.span(), f"{m.group(1)}{MASK * 3}@{m.group(2)}")
    for m in _PLATE.finditer(text):
        claim(PersonalInfoKind.LICENSE_PLATE, *m.span(), m.group(1) + MASK * len(m.group(2)))
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
