"""Stage 1 of ingest: turn one file on disk into plain text (`RawDocument`), whatever its format or encoding.

    from ingest.loaders import load_file
    raw = load_file(Path("shared/corpus/plans/000_e71e79a35d633e9d.txt"))
    raw.kind, raw.encoding, raw.text[:20]  # ("text", "utf-8", "• 索引号: 11370100004188776N…")

Supported: .txt .md (text, any of UTF-8 ± BOM, UTF-16 with BOM, GB2312/GBK/GB18030, Big5), .html/.htm
(block structure kept as line breaks; script/style/nav dropped), .docx (python-docx), .pdf (text layer via
pypdf). Anything unreadable raises `IngestError` naming the file. Sidecars (`x.meta.json`) and FAQ sheets are
not documents: callers skip them (`is_document_file`).
"""
from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.errors import IngestError

SUPPORTED_SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
    ".pdf": "pdf",
}
SIDECAR_SUFFIXES = (".meta.json", ".meta.yaml", ".meta.yml")

# Detection may name any of these for Chinese text; GB18030 is a strict superset of all of them, so decoding
# with it never loses a character that a narrower guess would have rejected (e.g. "•" is not in GBK).
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "euc_cn", "ms936"}
# C0/C1 control characters other than \t \n \v \f \r, and U+FFFD left by a lossy decode.
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")


@dataclass
class RawDocument:
    """A loaded file: its text exactly as decoded/extracted, before any cleaning."""

    path: Path
    text: str
    kind: str  # "text" | "markdown" | "html" | "docx" | "pdf"
    encoding: str | None = None  # the decoder used for byte-text formats (None for docx/pdf)


def is_document_file(path: Path) -> bool:
    """True for files `load_file` handles and that are not metadata sidecars.

        is_document_file(Path("a.pdf"))            # True
        is_document_file(Path("a.pdf.meta.json"))  # False
    """
    name = path.name.lower()
    if name.endswith(SIDECAR_SUFFIXES):
        return False
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load_file(path: Path) -> RawDocument:
    """Read `path` and return its text; raises IngestError for unsupported, empty, binary or corrupt files.

        raw = load_file(Path("政策.pdf"))   # RawDocument(kind="pdf", text="…")
    """
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise IngestError(path, f"unsupported file type {path.suffix or '(no suffix)'!r}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(path, f"cannot read file ({e.strerror or e})") from e
    if not data.strip():
        raise IngestError(path, "empty file")

    if kind == "docx":
        return RawDocument(path, _docx_text(data, path), kind)
    if kind == "pdf":
        return RawDocument(path, _pdf_text(data, path), kind)
    if kind == "html":
        text, encoding = _decode_html(data, path)
        return RawDocument(path, _non_empty(html_to_text(text), path), kind, encoding)
    text, encoding = decode_bytes(data, path)
    return RawDocument(path, _non_empty(text, path), kind, encoding)


def decode_bytes(data: bytes, path: Path | str = "<bytes>") -> tuple[str, str]:
    """Decode text bytes of unknown encoding; returns (text, codec name). Raises IngestError if not text.

        decode_bytes("失业保险".encode("gbk"))  # ("失业保险", "gb18030")
    """
    if not data.strip():
        raise IngestError(path, "empty file")
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                       (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return _checked(data.decode(codec), path), codec
            except UnicodeDecodeError as e:
                raise IngestError(path, f"invalid {codec} text after byte-order mark ({e.reason})") from e
    if b"\x00" in data[:65536]:
        # NUL never occurs in single/multi-byte Chinese text; UTF-16 without a BOM is not worth guessing.
        raise IngestError(path, "binary content, not text (NUL bytes)")
    try:
        # Strict UTF-8 almost never succeeds on non-UTF-8 CJK bytes, and it is far cheaper than detection.
        return _checked(data.decode("utf-8"), path), "utf-8"
    except UnicodeDecodeError:
        pass

    best = from_bytes(data).best()
    if best is None:
        raise IngestError(path, "undecodable text (no encoding fits; binary or corrupt?)")
    codec = codecs.lookup(best.encoding).name.replace("-", "_")
    if codec in _GB_FAMILY:
        codec = "gb18030"
    elif not _is_cjk_or_unicode(codec) and _looks_like_gb18030(data):
        # Short GBK snippets are sometimes taken for a Latin code page; this corpus is Chinese.
        codec = "gb18030"
    try:
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        text = str(best)
    return _checked(text, path), codec


def _is_cjk_or_unicode(codec: str) -> bool:
    return codec.startswith(("utf", "gb", "big5", "cp950", "euc", "shift_jis", "cp932", "iso2022", "hz", "cp949"))


def _looks_like_gb18030(data: bytes) -> bool:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    non_ascii = [c for c in text if ord(c) > 127]
    cjk = sum(1 for c in non_ascii if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef")
    return bool(non_ascii) and cjk / len(non_ascii) > 0.9


def _checked(text: str, path: Path | str) -> str:
    """Reject decodes that are really binary: many control characters or replacement characters."""
    sample = text[:100_000]
    bad = len(_BAD_CHARS.findall(sample))
    if sample and bad / len(sample) > 0.005:
        raise IngestError(path, "binary content, not text (control characters)")
    return text


def _non_empty(text: str, path: Path) -> str:
    if not text.strip():
        raise IngestError(path, "no text content")
    return text


# --------------------------------------------------------------------------------------------- HTML

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)


def _decode_html(data: bytes, path: Path) -> tuple[str, str]:
    """Honour a declared <meta charset> when it decodes cleanly; otherwise detect like any text file."""
    m = _META_CHARSET.search(data[:4096])
    if m and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            codec = codecs.lookup(m.group(1).decode("ascii")).name.replace("-", "_")
            codec = "gb18030" if codec in _GB_FAMILY else codec
            return _checked(data.decode(codec), path), codec
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common on old government sites
    return decode_bytes(data, path)


class _HtmlText(HTMLParser):
    """Collects visible text; block elements become line breaks so paragraphs and outline items survive."""

    BLOCK = {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul", "title",
    }
    CELL = {"td", "th"}
    SKIP = {"script", "style", "nav", "noscript", "template", "head", "iframe", "svg", "object", "select"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "pre":
            self._pre += 1
        if tag in self.BLOCK:
            self.parts.append("\n")
        elif tag in self.CELL:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:  # <br/>, <hr/>
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        # HTML collapses source whitespace; \u3000 is content, not markup whitespace, so it is kept.
        self.parts.append(data if self._pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block per line.

        html_to_text("<p>一、总体要求</p><script>x()</script><p>正文</p>")  # "一、总体要求\\n正文"
    """
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (line.strip(" ") for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------------------------- DOCX / PDF


def _docx_text(data: bytes, path: Path) -> str:
    try:
        import docx  # lazy: python-docx costs 0.08-0.2 s at every command's start-up, only .docx files need it

        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        for block in document.iter_inner_content():  # paragraphs and tables in reading order
            if isinstance(block, docx.table.Table):
                for row in block.rows:
                    seen: set[int] = set()
                    cells = []
                    for cell in row.cells:  # a merged cell is repeated once per grid column
                        if id(cell._tc) not in seen:
                            seen.add(id(cell._tc))
                            cells.append(cell.text.strip())
                    blocks.append(" ".join(c for c in cells if c))
            else:
                blocks.append(block.text)
    except Exception as e:  # python-docx raises zipfile/lxml/KeyError alike on damaged packages
        raise IngestError(path, f"not a valid DOCX ({_short(e)})") from e
    return _non_empty("\n".join(blocks), path)


def _pdf_text(data: bytes, path: Path) -> str:
    if b"%PDF-" not in data[:1024]:
        raise IngestError(path, "not a valid PDF (no %PDF header)")
    try:
        from pypdf import PdfReader  # lazy: pypdf costs 0.08-0.2 s at every command's start-up, only PDFs need it

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(path, "encrypted PDF (password required)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except Exception as e:  # pypdf raises many exception types on malformed files
        raise IngestError(path, f"not a valid PDF ({_short(e)})") from e
    if not any(p.strip() for p in pages):
        raise IngestError(path, "no text layer (scanned?)")
    return "\n\n".join(p.strip("\n") for p in pages)


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]
