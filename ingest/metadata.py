"""Stage 3 of ingest: read a document's metadata (标题, 文号, 索引号, 发布机构, dates, 有效性 …) and cut the header off.

    from ingest.metadata import extract_metadata
    meta, body = extract_metadata(RawDocument(path, clean_text(text), "text"))
    meta.title, meta.publisher, meta.published_date  # ("济南市司法局2025年政务公开工作实施方案", "济南市司法局", date(2025, 6, 16))

Two layouts are recognised:
- regulation Markdown (`# 标题`, dated promulgation/revision lines, `<!-- INFO END -->`, then the text);
- 政务公开 pages and other 公文: a label header in any of the scraped layouts (`• 索引号: … 组配分类: …` with several
  labels on one line; label and value on separate lines; labels without colons; empty labels), or no header at all,
  in which case title, publisher and date come from the notice line (关于印发《…》的通知) and the signature.
A sidecar `NAME.meta.json` / `NAME.meta.yaml` beside the file (NAME = full file name or its stem) overrides any
field; its keys are DocumentMeta field names or the Chinese labels (标题, 发文字号, 发布机构, 公开方式, 有效性 …).
"""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import IngestError
from ingest.loaders import RawDocument
from knowledge_base.models import Disclosure, DocType, DocumentMeta
from knowledge_base.places import gazetteer
from knowledge_base.text import CN_DIGITS, cn_to_int

INFO_END = "<!-- INFO END -->"

# Header label → DocumentMeta field. None = a label we recognise (so it ends the previous value) but do not keep.
LABELS: dict[str, str | None] = {
    "标题": "title",
    "发文字号": "doc_number",
    "文件编号": "doc_number",
    "文号": "doc_number",
    "索引号": "index_number",
    "发布机构": "publisher",
    "发文机关": "publisher",
    "发文单位": "publisher",
    "发布单位": "publisher",
    "成文日期": "written_date",
    "发布日期": "published_date",
    "发文日期": "published_date",
    "公开日期": "published_date",
    "有效性": "validity_text",
    "时效性": "validity_text",
    "效力状态": "validity_text",
    "主题分类": "topic",
    "组配分类": "topic",
    "公开方式": "disclosure",
    "公开属性": "disclosure",
    "公开形式": "disclosure",
    "统一编号": None,
    "文件登记号": None,
    "登记号": None,
    "体裁分类": None,
    "服务对象分类": None,
    "主题词": None,
    "生效日期": None,
    "失效日期": None,
}
# Sidecar keys: field names, the header labels, and a few more Chinese names staff use.
SIDECAR_ALIASES: dict[str, str] = {
    **{label: f for label, f in LABELS.items() if f},
    "版本日期": "version_date",
    "地区": "region",
    "区域": "region",
    "文档类型": "doc_type",
    "类型": "doc_type",
    "修订记录": "revision_notes",
    "历次修订": "revision_notes",
    "来源路径": "source_path",
}
_FIELDS = {f.name: f for f in dataclasses.fields(DocumentMeta)}
_DATE_FIELDS = {"written_date", "published_date", "version_date"}

_LABEL_ALT = "|".join(sorted(LABELS, key=len, reverse=True))
# A label followed by a colon, at line start or after whitespace/bullet (so "…的发布机构:" inside prose is not one).
_COLON_LABEL = re.compile(rf"(?:^|(?<=[\s•·]))({_LABEL_ALT})\s*[:：]")
_BARE_LABEL = re.compile(rf"^({_LABEL_ALT})\s*[:：]?$")
_GLUED_LABEL = re.compile(rf"^(.+?)({_LABEL_ALT})$")

_CN_NUM = "〇零一二两三四五六七八九十百千"
_DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_CN_DATE_RE = re.compile(rf"([{_CN_NUM}]{{4}})年([{_CN_NUM}]{{1,3}})月([{_CN_NUM}]{{1,3}})日")
_DOC_NUMBER_RE = re.compile(
    r"^[\u4e00-\u9fffA-Za-z]{1,20}\s*[〔\[［(（【]\s*\d{4}\s*[〕\]］)）】]\s*第?\s*\d+\s*号$"  # 淄政办字〔2025〕17号
    r"|^[\u4e00-\u9fff]{1,30}第\s*[\d一二三四五六七八九十百千零〇]+\s*号$"  # 国务院令第258号
)
_INDEX_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\-/_.]{5,60}$")
_VALIDITY_WORDS = ("有效", "失效", "废止", "已修改", "已修订", "尚未生效", "现行")
_SIGNATURE_ORG = re.compile(r"^[\u4e00-\u9fff（）()、]{2,40}(局|办公室|办公厅|政府|委员会|厅|部|院|中心|处|委|办|会|所|署)$")
_NOTICE_TITLE = re.compile(r"^关于印发《(.+)》的通知$")

# Regions: every prefecture-level city (longest first, so 乌鲁木齐 before shorter names), then the provinces
# (knowledge_base.places, from the 行政区划 list).
PROVINCES = tuple(p for p in gazetteer().places if gazetteer().is_province(p))
CITIES = tuple(p for p in gazetteer().places if not gazetteer().is_province(p))


# ------------------------------------------------------------------------------------------------ public API


def extract_metadata(raw: RawDocument) -> tuple[DocumentMeta, str]:
    """Metadata and the body text (header removed) of a cleaned document; a sidecar, if present, wins.

        meta, body = extract_metadata(RawDocument(Path("失业保险条例(1999-01-22).md"), text, "markdown"))
        meta.version_date, meta.doc_number  # (date(1999, 1, 22), "中华人民共和国国务院令第258号")
    """
    if _is_regulation_markdown(raw):
        meta, body = _regulation_meta(raw)
    else:
        meta, body = _document_meta(raw)
    sidecar = find_sidecar(raw.path)
    if sidecar is not None:
        meta = apply_overrides(meta, read_sidecar(sidecar), sidecar)
    return meta, body


def parse_date(value: str) -> date | None:
    """A date from "2025-06-16", "2025/6/16", "2025年5月28日" or "二〇一七年六月二十日"; None if there is none.

        parse_date("成文日期: 2025年5月28日")  # date(2025, 5, 28)
    """
    m = _DATE_RE.search(value)
    if m:
        parts = [int(g) for g in m.groups()]
    else:
        m = _CN_DATE_RE.search(value)
        if not m:
            return None
        year = int("".join(str(CN_DIGITS.get(c, 0)) for c in m.group(1)))
        parts = [year, cn_to_int(m.group(2)), cn_to_int(m.group(3))]
    try:
        return date(*parts)
    except ValueError:
        return None


def find_sidecar(path: Path) -> Path | None:
    """The metadata sidecar of `path`, if one exists: x.txt.meta.json, x.txt.meta.yaml, x.meta.json, …

        find_sidecar(Path("docs/plan.txt"))  # Path("docs/plan.txt.meta.json") or None
    """
    path = Path(path)
    for base in (path.name, path.stem):
        for suffix in (".meta.json", ".meta.yaml", ".meta.yml"):
            candidate = path.with_name(base + suffix)
            if candidate != path and candidate.is_file():
                return candidate
    return None


def read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The mapping stored in a .meta.json / .meta.yaml file; IngestError if it is not a mapping."""
    try:
        text = sidecar.read_text(encoding="utf-8-sig")
        if sidecar.name.endswith(".json"):
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise IngestError(sidecar, f"unreadable metadata sidecar ({e})") from e
    except Exception as e:  # yaml.YAMLError and friends
        raise IngestError(sidecar, f"unreadable metadata sidecar ({str(e).splitlines()[0]})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise IngestError(sidecar, "metadata sidecar must be a mapping of field: value")
    return data


def apply_overrides(meta: DocumentMeta, overrides: dict[str, Any], source: Path | str = "sidecar") -> DocumentMeta:
    """A copy of `meta` with the given fields replaced; keys may be field names or Chinese labels.

        apply_overrides(meta, {"标题": "新标题", "公开方式": "依申请公开", "发布日期": "2025-06-16"})
    """
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        name = str(key).strip()
        name = SIDECAR_ALIASES.get(name, name)
        if name not in _FIELDS:
            raise IngestError(source, f"unknown metadata field {key!r}")
        changes[name] = _coerce(name, value, source)
    if "title" in changes and not changes["title"]:
        raise IngestError(source, "title must not be empty")
    return dataclasses.replace(meta, **changes)


def region_of(*texts: str | None) -> str | None:
    """The first city, then province, named in any of `texts` (publisher, title, path …); 全国 for national organs.

        region_of("济南市司法局")  # "济南"
    """
    for text in texts:
        if text:
            for city in CITIES:
                if city + "市" in text or text.startswith(city):
                    return city
    for text in texts:
        if text:
            for province in PROVINCES:
                if province in text:
                    return province
    for text in texts:
        if text and re.search(r"国务院|全国人民代表大会|中华人民共和国|national", text):
            return "全国"
    return None


def parse_disclosure(value: str) -> Disclosure | None:
    """主动公开 / 依申请公开 / 不予公开 (or the enum name) → Disclosure; None if not recognisable."""
    value = value.strip()
    for d in Disclosure:
        if value.upper() == d.name:
            return d
    if "依申请" in value:
        return Disclosure.ON_REQUEST
    if "不予公开" in value or "不公开" in value:
        return Disclosure.WITHHELD
    if "主动公开" in value or value in ("公开", "public"):
        return Disclosure.PUBLIC
    return None


# ------------------------------------------------------------------------------------------------ regulations

_DATED = re.compile(r"^[(（]?\d{4}\s*年")
# A note that ends like this is complete; anything else continues on the next (wrapped) line.
_NOTE_COMPLETE = re.compile(r"(通过|发布|公布|施行|执行|批准|修订|修正|印发|废止|生效)[)）]?$")
_ORDER_NUMBER = re.compile(rf"([^\s《》〈〉（）()，,。]*?(?:令|公告)\s*第\s*[\d{_CN_NUM}]+\s*号)")
_EFFECTIVE_ONLY = re.compile(r"^\S*\s*(起?施行|执行|生效)$")


def _is_regulation_markdown(raw: RawDocument) -> bool:
    if INFO_END in raw.text:
        return True
    lines = [line for line in raw.text.split("\n") if line.strip()]
    return raw.kind == "markdown" and len(lines) > 1 and lines[0].startswith("# ") and bool(_DATED.match(lines[1]))


def _regulation_meta(raw: RawDocument) -> tuple[DocumentMeta, str]:
    lines = raw.text.split("\n")
    title_idx = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    title = lines[title_idx][2:].strip() if title_idx is not None else ""
    start = title_idx + 1 if title_idx is not None else 0
    if INFO_END in raw.text:
        end = next(i for i, line in enumerate(lines) if INFO_END in line)
        head, body_lines = lines[start:end], lines[end + 1:]
    else:  # no marker: the dated lines right after the title are the header
        end = start
        while end < len(lines) and (not lines[end].strip() or _DATED.match(lines[end].strip())):
            end += 1
        head, body_lines = lines[start:end], lines[end:]

    notes, preface = _group_notes(head)
    version = _file_date(raw.path) or _latest_note_date(notes)
    meta = DocumentMeta(
        title=title or _stem_title(raw.path),
        source_path=str(raw.path),
        doc_number=_order_number(notes) or _standalone_doc_number(preface),
        publisher=(
            _regulation_publisher(notes, title) or _signature(preface)[0] or _publisher_from_title(title, raw.path)
        ),
        published_date=version,
        version_date=version,
        region=_regulation_region(raw.path, title),
        doc_type=DocType.REGULATION,
        revision_notes=notes,
    )
    return meta, "\n".join(body_lines).strip("\n")


def _group_notes(head: list[str]) -> tuple[list[str], list[str]]:
    """Dated promulgation/revision notes (wrapped lines re-joined) and the undated lines before the first one."""
    notes: list[str] = []
    preface: list[str] = []
    for line in (line.strip() for line in head):
        if not line:
            continue
        if _DATED.match(line):
            notes.append(line)
        elif notes and not _NOTE_COMPLETE.search(notes[-1]):
            notes[-1] += line  # a note the source wrapped mid-phrase ("…《关于修改" / "废止部分…的决定》修正")
        elif notes:
            notes.append(line)  # e.g. "发布之日施行"
        else:
            preface.append(line)  # title continuation, an enclosed notice …
    return notes, preface


def _note_date(note: str) -> date | None:
    return parse_date(note[:16])


def _latest_note(notes: list[str]) -> str | None:
    """The most recent note that is not a bare effective-date line ("2004年1月1日 施行")."""
    dated = [
        (d, i, n) for i, n in enumerate(notes) if (d := _note_date(n)) and not _EFFECTIVE_ONLY.match(_strip_date(n))
    ]
    return max(dated)[2] if dated else None


def _latest_note_date(notes: list[str]) -> date | None:
    note = _latest_note(notes)
    return _note_date(note) if note else None


def _strip_date(note: str) -> str:
    return re.sub(r"^[(（]?\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日?\s*", "", note)


def _order_number(notes: list[str]) -> str | None:
    note = _latest_note(notes)
    if not note:
        return None
    m = _ORDER_NUMBER.search(_strip_date(note))
    return re.sub(r"\s+", "", m.group(1)) if m else None


_INLINE_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(\s*\d{1,2}\s*日?)?")
# "山东省第十三届人民代表大会常务委员会第十次会议批准的《…》": the province approves, the city enacts.
_APPROVAL = re.compile(
    rf"(并经)?({'|'.join(PROVINCES)})省?(第?[一二三四五六七八九十]+届)?人民代表大会常务委员会(第[一二三四五六七八九十百]+次会议)?"
    r"(于|通过)?批准的?"
)
_KNOWN_PLACE = re.compile(rf"({'|'.join(CITIES)})市|({'|'.join(PROVINCES)})省?")
_CONGRESS = re.compile(r"(第?[一二三四五六七八九十百]+届)?人民代表大会(常务委员会)?")


def _regulation_publisher(notes: list[str], title: str) -> str | None:
    """The organ that issued this version: the latest note naming one, a province's 批准 only as a last resort."""
    latest_first = [_INLINE_DATE.sub(" ", note) for note in notes[::-1]]
    for note in latest_first:
        organ = _organ(_APPROVAL.sub(" ", note).strip(), title)
        if organ:
            return organ
    for note in latest_first:
        organ = _organ(note.strip(), title)
        if organ:
            return organ
    return None


def _publisher_from_title(title: str, path: Path) -> str | None:
    """"国务院关于…的规定" names its organ; the 行政法规 collection is by definition the State Council's."""
    m = re.match(r"^([\u4e00-\u9fff、]{2,20}?(?:国务院|中央军委|中央军事委员会|部|局|委员会|总署|办公厅))关于", title)
    if m:
        return _organ(m.group(1) + "发布", title)
    if "行政法规" in Path(path).parts:
        return "国务院"
    return None


def _organ(note: str, title: str = "") -> str | None:
    decision = re.search(r"《([\u4e00-\u9fff、]{2,20}?)关于", note)  # 《国务院关于修改…的决定》
    note = re.sub(r"《.*》|〈.*〉", "", note)  # titles of amending decisions name other bodies
    note = note.replace("人大常委会", "人民代表大会常务委员会")
    organ = _organ_in(note, title)
    if organ is None and decision and not re.search(r"人民代表大会|会议", note):
        organ = _organ_in(decision.group(1) + "发布", title)
    return organ


def _organ_in(note: str, title: str) -> str | None:
    if "国务院" in note and re.search(r"中央军事委员会|中央军委", note):
        return "国务院、中央军事委员会"
    if "全国人民代表大会常务委员会" in note:
        return "全国人民代表大会常务委员会"
    if "全国人民代表大会" in note:
        return "全国人民代表大会"
    congress = _CONGRESS.search(note)
    if congress:
        place = _congress_place(note[: congress.start()], title)
        if place:
            return place + "人民代表大会" + (congress.group(2) or "")
    for organ in ("国务院", "政务院"):
        if organ in note:
            return organ
    m = re.match(
        r"^(?:中华人民共和国)?([\u4e00-\u9fff、]{2,30}?(?:部|局|委员会|总署|署|院|政府|办公厅|办公室|银行))"
        r"(?=令|发布|公布|印发|制定|\d{4}年|第[\d一二三四五六七八九十]+次)",
        note,
    )
    return m.group(1) if m else None


def _congress_place(before: str, title: str) -> str | None:
    """The place whose 人民代表大会 is meant, from the text right before it ("…青岛市第十六届人民代表大会")."""
    tail = before[-12:]
    known = list(_KNOWN_PLACE.finditer(tail))
    if known and known[-1].end() == len(tail):
        m = known[-1]
        return m.group(0) if m.group(1) else m.group(2) + "省"
    m = re.search(r"[\u4e00-\u9fff]{2,6}?(?:自治县|县|市|州|省)$", tail)
    if m:
        return m.group(0)
    if tail.endswith(("市", "省")):  # "市十二届人民代表大会…": the place is the one the title names
        t = re.match(rf"^([\u4e00-\u9fff]{{2,8}}?{tail[-1]})", title)
        return t.group(1) if t else None
    return None


def _file_date(path: Path) -> date | None:
    m = re.search(r"\((\d{4}-\d{2}-\d{2})\)", path.name)
    return parse_date(m.group(1)) if m else None


def _stem_title(path: Path) -> str:
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    return re.sub(r"\(\d{4}-\d{2}-\d{2}\)$", "", name).strip() or path.name


def _regulation_region(path: Path, title: str) -> str | None:
    parts = set(Path(path).parts)
    if "national" in parts:
        return "全国"
    for city in CITIES:
        if title.startswith(city):
            return city
    for province in PROVINCES:
        if title.startswith(province) or province in parts:
            return province
    return region_of(title, str(path))


# ------------------------------------------------------------------------------------------------ 公文 / plans


def _document_meta(raw: RawDocument) -> tuple[DocumentMeta, str]:
    lines = raw.text.split("\n")
    fields, header_end = _parse_header(lines)
    body_lines = lines[header_end:]
    body_nonempty = [line.strip() for line in body_lines if line.strip()]

    title = fields.get("title") or _fallback_title(body_nonempty) or _stem_title(raw.path)
    sig_org, sig_date = _signature(body_nonempty)
    written = parse_date(fields.get("written_date", "")) or sig_date
    # Pages without a release date: the signed date is the best available stand-in for "published".
    published = parse_date(fields.get("published_date", "")) or written
    publisher = fields.get("publisher") or sig_org
    disclosure = (
        parse_disclosure(fields.get("disclosure", "")) or _disclosure_in_body(body_nonempty) or Disclosure.PUBLIC
    )
    doc_number = fields.get("doc_number") or _standalone_doc_number(body_nonempty[:15])
    body = "\n".join(body_lines).strip("\n")

    meta = DocumentMeta(
        title=title,
        source_path=str(raw.path),
        doc_number=doc_number,
        index_number=fields.get("index_number"),
        publisher=publisher,
        written_date=written,
        published_date=published,
        validity_text=fields.get("validity_text"),
        topic=fields.get("topic"),
        region=region_of(publisher, title, str(raw.path)),
        disclosure=disclosure,
        doc_type=_doc_type(body),
    )
    return meta, body


def _parse_header(lines: list[str]) -> tuple[dict[str, str], int]:
    """Label/value pairs of the header and the index of the first body line (0 when there is no header)."""
    fields: dict[str, str] = {}
    pending: str | None = None  # a label whose value may be on the next line
    seen_label = False
    header_end = 0
    nonempty_seen = 0
    for idx, line in enumerate(lines):
        text = line.strip().lstrip("•·").strip()
        if not text:
            continue
        nonempty_seen += 1
        pairs = _label_pairs(text)
        if pairs is None:
            if pending is not None:
                value, glued = _split_glued(text)
                if _valid(pending, value):
                    _store(fields, pending, value)
                    pending, header_end = glued, idx + 1
                    continue
                pending = None
            if not seen_label and nonempty_seen <= 6:
                continue  # tolerate a few lines of leftover page chrome above the header
            break
        seen_label = True
        pending = None
        for label, value in pairs:
            if value:
                _store(fields, label, value)
        last_label, last_value = pairs[-1]
        bullet = line.lstrip().startswith(("•", "·"))
        # Bullet layouts keep values on the label's own line: an empty one stays empty.
        if not last_value and not bullet:
            pending = last_label
        header_end = idx + 1
    return (fields, header_end) if seen_label else ({}, 0)


def _label_pairs(text: str) -> list[tuple[str, str]] | None:
    bare = _BARE_LABEL.match(text)
    if bare:
        return [(bare.group(1), "")]
    matches = list(_COLON_LABEL.finditer(text))
    if not matches or matches[0].start() != 0:
        return None
    pairs = []
    for m, nxt in zip(matches, matches[1:] + [None]):
        value = text[m.end(): nxt.start() if nxt else len(text)].strip()
        pairs.append((m.group(1), value))
    return pairs


def _split_glued(text: str) -> tuple[str, str | None]:
    """"…的通知发文机关" → ("…的通知", "发文机关"): a colon-less layout glued the next label to a value."""
    m = _GLUED_LABEL.match(text)
    if m and len(m.group(1)) >= 2:
        return m.group(1).strip(), m.group(2)
    return text, None


def _valid(label: str, value: str) -> bool:
    """Whether a line can be the value of `label` (so an empty label never swallows the title or the text)."""
    field = LABELS[label]
    if not value or len(value) > 200:
        return False
    if field == "title":
        return True
    if field in _DATE_FIELDS:
        return parse_date(value) is not None and len(value) <= 20
    if field == "doc_number":
        return bool(_DOC_NUMBER_RE.match(value))
    if field == "index_number":
        return bool(_INDEX_RE.match(value))
    if field == "validity_text":
        return len(value) <= 10 and any(w in value for w in _VALIDITY_WORDS)
    if field == "disclosure":
        return parse_disclosure(value) is not None and len(value) <= 10
    if field in ("publisher", "topic"):
        return len(value) <= 40 and not re.search(r"[。，,；;]", value)
    # labels we do not keep: accept short codes only
    return len(value) <= 40 and not re.search(r"[\u4e00-\u9fff]{4,}", value)


def _store(fields: dict[str, str], label: str, value: str) -> None:
    field = LABELS[label]
    if field and not fields.get(field):  # the first non-empty occurrence wins (主题分类 before 组配分类 etc.)
        fields[field] = value


def _fallback_title(body: list[str]) -> str | None:
    for line in body[:3]:
        m = _NOTICE_TITLE.match(line)
        if m:
            return m.group(1)  # the notice transmits the plan: the plan is the document
    if body:
        first = body[0].lstrip("# ").strip()
        if 4 <= len(first) <= 80 and not re.search(r"[。：:；;，,]$", first) and "。" not in first:
            return first
    return None


def _signature(body: list[str]) -> tuple[str | None, date | None]:
    """Issuing organ and date from a signature block: an organ line followed by a date line (or both on one)."""
    for i, line in enumerate(body):
        m = re.match(r"^(\S+)\s+(\S+年\S+月\S+日)$", line)
        if m and _SIGNATURE_ORG.match(m.group(1)) and parse_date(m.group(2)):
            return m.group(1), parse_date(m.group(2))
        if i + 1 < len(body) and _SIGNATURE_ORG.match(line) and len(body[i + 1]) <= 16:
            d = parse_date(body[i + 1])
            if d and re.fullmatch(r"[\d〇零一二三四五六七八九十年月日\s]+", body[i + 1]):
                return line, d
    return None, None


def _standalone_doc_number(lines: list[str]) -> str | None:
    for line in lines:
        line = line.strip()
        if len(line) <= 40 and _DOC_NUMBER_RE.match(line):
            return re.sub(r"\s+", "", line)
    return None


def _disclosure_in_body(body: list[str]) -> Disclosure | None:
    for line in body[:40] + body[-10:]:
        m = re.fullmatch(r"[(（]\s*此件(.{0,8})[)）]", line)
        if m:
            return parse_disclosure(m.group(1)) or (Disclosure.PUBLIC if "公开发布" in m.group(1) else None)
    return None


_ARTICLE_LINE = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]+条\s")
_OUTLINE_LINE = re.compile(r"^(#+\s*)?([一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）])")


def _doc_type(body: str) -> DocType:
    lines = body.split("\n")
    if sum(1 for line in lines if _ARTICLE_LINE.match(line)) >= 3:
        return DocType.REGULATION
    if any(_OUTLINE_LINE.match(line) for line in lines):
        return DocType.PLAN
    return DocType.OTHER


# ------------------------------------------------------------------------------------------------ sidecar values


def _coerce(name: str, value: Any, source: Path | str) -> Any:
    if name in _DATE_FIELDS:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        parsed = parse_date(str(value))
        if parsed is None:
            raise IngestError(source, f"{name}: not a date {value!r} (use YYYY-MM-DD)")
        return parsed
    if name == "disclosure":
        d = parse_disclosure(str(value or ""))
        if d is None:
            raise IngestError(source, f"disclosure: {value!r} is not 主动公开 / 依申请公开 / 不予公开")
        return d
    if name == "doc_type":
        for t in DocType:
            if str(value).strip().lower() in (t.value, t.name.lower()):
                return t
        raise IngestError(source, f"doc_type: {value!r} is not one of {[t.value for t in DocType]}")
    if name == "revision_notes":
        if value is None:
            return []
        if isinstance(value, str):
            return [line.strip() for line in value.split("\n") if line.strip()]
        return [str(v) for v in value]
    if value is None:
        return None
    return str(value).strip()
