"""Versions of a work: documents whose normalized titles match; the newest is in force.

    normalize_title("中华人民共和国 劳动合同法（2012年修正）")  # -> "中华人民共和国劳动合同法"
    assign_validity(versions)  # -> {doc_id: (Validity, superseded_by)}

A public (主动公开) version's chain is built from public versions only: a newer version that is withheld (不予公开,
依申请公开) neither supersedes it nor appears as its `superseded_by`, so no public route reveals that it exists.
A non-public version is placed among all versions (only staff see it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from .models import Validity
from .text import fold

_REVISION_SUFFIX = re.compile(r"[(（][^()（）]*(修订|修正|修改|年版|草案)[^()（）]*[)）]$")
_EXPIRED_WORDS = ("失效", "废止", "已废止", "已失效", "作废")


def normalize_title(title: str) -> str:
    t = fold(title)
    t = re.sub(r"[\s\u3000]+", "", t)
    t = _REVISION_SUFFIX.sub("", t)
    return t.replace("〈", "<").replace("〉", ">").replace("《", "<").replace("》", ">")


def is_expired_text(validity_text: str | None) -> bool:
    return bool(validity_text) and any(w in validity_text for w in _EXPIRED_WORDS)


@dataclass
class VersionInfo:
    doc_id: str
    version_date: date | None
    ingested_at: datetime
    validity_text: str | None
    public: bool = True  # 主动公开


def assign_validity(versions: list[VersionInfo]) -> dict[str, tuple[Validity, str | None]]:
    """The newest version is in force unless marked 失效/废止; older ones are superseded by it. Public versions are
    ranked among the public ones only."""
    public = [v for v in versions if v.public]
    out = _chain(versions)
    if public:
        out.update(_chain(public))
    return out


def _chain(versions: list[VersionInfo]) -> dict[str, tuple[Validity, str | None]]:
    ordered = sorted(versions, key=lambda v: (v.version_date or date.min, v.ingested_at))
    newest = ordered[-1]
    out: dict[str, tuple[Validity, str | None]] = {}
    for v in ordered:
        if is_expired_text(v.validity_text):
            out[v.doc_id] = (Validity.EXPIRED, None if v is newest else newest.doc_id)
        elif v is newest:
            out[v.doc_id] = (Validity.IN_FORCE, None)
        else:
            out[v.doc_id] = (Validity.SUPERSEDED, newest.doc_id)
    return out
