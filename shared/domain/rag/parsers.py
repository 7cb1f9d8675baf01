"""Turning an uploaded file's bytes into plain text for chunking.

Every failure is a ParseError whose message can go straight to the user: parsers see bytes,
never paths, and library errors are cut down to one short line.
"""

from __future__ import annotations

import bisect
import codecs
import io
import re
from dataclasses import dataclass

import charset_normalizer
import lxml.etree
import lxml.html
import pypdf
import trafilatura


class ParseError(Exception):
    """The file cannot be turned into text; the message is safe to show the user (no paths,
    no stack)."""


class UnsupportedType(ParseError):
    """No parser for this kind of file."""


@dataclass(frozen=True)
class ParsedDocument:
    text: str  # plain text; Markdown '#' heading lines where the source had headings (md, html)
    kind: str  # "text" | "markdown" | "pdf" | "html"
    title: str | None = None
    page_starts: tuple[int, ...] = ()  # PDF only: char offset in `text` where page i+1 starts


# Checked longest first: a UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF = 8192  # bytes looked at for control characters, and for a <meta charset>
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13}  # C0 controls other than \t \n \f \r
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# WHATWG: labels for Latin-1 and ASCII mean windows-1252, which fills 0x80-0x9F with
# printable characters (curly quotes, euro sign) instead of C1 controls; a UTF-16 label in a
# page without a BOM is a mistake and means UTF-8.
_WHATWG_ALIASES = dict.fromkeys(("iso-8859-1", "latin1", "ascii", "us-ascii"), "cp1252") | (
    dict.fromkeys(("utf-16", "utf-16le", "utf-16be"), "utf-8")
)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_PDF_MAGIC_WINDOW = 1024  # readers accept junk before %PDF- (mail headers...) up to 1 KiB
_NEWLINES = re.compile(r"\r\n?")


def page_of(doc: ParsedDocument, offset: int) -> int | None:
    """The 1-based PDF page holding character `offset` of `doc.text`; None when the document
    has no pages (not a PDF) or the offset lies outside the text."""
    if not doc.page_starts or not 0 <= offset <= len(doc.text):
        return None
    return max(1, bisect.bisect_right(doc.page_starts, offset))


def parse(data: bytes, kind: str, *, max_chars: int = 5_000_000) -> ParsedDocument:
    if kind in ("text", "markdown"):
        text = _normalise(_decode(data))
        doc = ParsedDocument(
            text=text, kind=kind, title=_first_h1(text) if kind == "markdown" else None
        )
    elif kind == "pdf":
        doc = _parse_pdf(data, max_chars)
    elif kind == "html":
        doc = _parse_html(data)
    else:
        raise UnsupportedType(f"unsupported file type: {kind!r}")
    if not doc.text.strip():
        raise ParseError("no text")
    if len(doc.text) > max_chars:
        raise ParseError(f"document too long: more than {max_chars:,} characters of text")
    return doc


# --- text -----------------------------------------------------------------------------------


def _decode(data: bytes, declared: str | None = None) -> str:
    """Bytes to str: a BOM wins, then a declared charset (HTML), then UTF-8, then a guess."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            data = data[len(bom) :]
            if encoding == "utf-8":
                declared = encoding  # and still checked for binary content below
                break
            try:  # UTF-16/32 text is full of NUL bytes, so it skips the binary check
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise ParseError(f"invalid {encoding.upper()} text") from None
    head = data[:_SNIFF]
    if b"\x00" in data:
        raise ParseError("binary content: the file contains NUL bytes")
    if head and sum(b in _CONTROL for b in head) > 0.3 * len(head):
        raise ParseError("binary content: too many control characters")
    if declared:
        try:
            return data.decode(_WHATWG_ALIASES.get(declared.lower(), declared))
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown or wrong label: fall through to what the bytes say
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _guess(data)


def _guess(data: bytes) -> str:
    # Without a BOM a UTF-16/32 guess is noise (the NUL check above already passed).
    matches = [m for m in charset_normalizer.from_bytes(data) if not m.encoding.startswith("utf_")]
    if not matches:
        raise ParseError("binary content: not text in any known encoding")
    best = matches[0]
    # The detector often ranks cp1250/cp1257 first for short Western text (turning "è" into
    # "č"); windows-1252 is by far the commonest legacy encoding, so it wins a near tie.
    for m in matches:
        if m.encoding == "cp1252" and m.chaos <= best.chaos + 0.1:
            best = m
            break
    return str(best)


def _normalise(text: str) -> str:
    return _NEWLINES.sub("\n", text)


def _first_h1(markdown: str) -> str | None:
    found = re.search(r"^#[ \t]+(.+?)[ \t#]*$", markdown, re.MULTILINE)
    return found.group(1) if found else None


# --- PDF ------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, max_chars: int) -> ParsedDocument:
    start = data.find(b"%PDF-", 0, _PDF_MAGIC_WINDOW)
    if start < 0:
        raise ParseError("unreadable PDF: no %PDF- header")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data[start:]), strict=False)
        # The reader has already tried the empty user password, which opens PDFs that are
        # encrypted only to restrict printing or copying; anything else needs a password.
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF")
        pages: list[str] = []
        length = 0
        for page in reader.pages:  # pages parse lazily, so errors surface here too
            text = _normalise(page.extract_text() or "").replace("\x00", "").strip()
            pages.append(text)
            length += len(text) + 2
            if length > max_chars:  # stop early rather than extract a huge file in full
                raise ParseError(f"document too long: more than {max_chars:,} characters of text")
        title = _pdf_title(reader)
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many kinds on malformed input, not only PdfReadError
        raise ParseError(f"unreadable PDF: {_short(exc)}") from None
    if not any(pages):
        raise ParseError("no extractable text (a scanned PDF needs OCR)")
    starts, offset = [], 0
    for text in pages:
        starts.append(offset)
        offset += len(text) + 2  # the "\n\n" joining pages
    return ParsedDocument("\n\n".join(pages), "pdf", title, tuple(starts))


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken Info dictionary must not lose a readable document
        return None
    return (title.strip() or None) if isinstance(title, str) else None


def _short(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:120] if lines else type(exc).__name__


# --- HTML -----------------------------------------------------------------------------------


def _parse_html(data: bytes) -> ParsedDocument:
    declared = _META_CHARSET.search(data[:_SNIFF])
    html = _normalise(_decode(data, declared.group(1).decode("ascii") if declared else None))
    # lxml refuses str input that still carries an XML encoding declaration.
    html = _XML_DECL.sub("", html, count=1)
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        raise ParseError("no text") from None
    title_text = tree.findtext(".//title")
    title = (" ".join(title_text.split()) or None) if title_text else None
    try:
        text = trafilatura.extract(
            html,
            output_format="markdown",
            include_comments=False,
            include_tables=True,
            with_metadata=False,
        )
    except Exception:  # trafilatura's heuristics are best effort; the fallback still works
        text = None
    return ParsedDocument((text or "").strip() or _body_text(tree), "html", title)


def _body_text(tree: lxml.html.HtmlElement) -> str:
    """Fallback for pages trafilatura finds no main content in (fragments, very short pages):
    all of the body's text, headings as '#' lines, scripts, styles, menus and footers dropped."""
    for el in tree.xpath("//script | //style | //noscript | //template | //nav | //footer"):
        el.drop_tree()
    body = tree.find(".//body")
    if body is None:
        return ""
    # text_content() glues blocks together; a newline after each block keeps words apart.
    for el in body.iter("p", "div", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6"):
        if el.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            el.text = "\n" + "#" * int(el.tag[1]) + " " + (el.text or "").lstrip()
        el.tail = "\n" + (el.tail or "")
    lines = (" ".join(line.split()) for line in body.text_content().split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
