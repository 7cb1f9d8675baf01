"""Document parsers: text/Markdown decoding, PDF text and pages, HTML main content."""

from __future__ import annotations

import codecs
import io
import random
from pathlib import Path

import pypdf
import pytest
import trafilatura

from shared.domain.files.kinds import ALLOWED_EXTENSIONS, kind_for
from shared.domain.rag.parsers import ParsedDocument, ParseError, UnsupportedType, page_of, parse

FILES = Path(__file__).resolve().parent.parent / "data" / "files"


def _read(name: str) -> bytes:
    return (FILES / name).read_bytes()


def _error(data: bytes, kind: str) -> str:
    with pytest.raises(ParseError) as info:
        parse(data, kind)
    return str(info.value)


# --- kinds ----------------------------------------------------------------------------------


def test_kind_for_goes_by_lower_cased_extension() -> None:
    assert kind_for("notes.TXT") == "text"
    assert kind_for("data.csv") == "text"
    assert kind_for("README.Markdown") == "markdown"
    assert kind_for("scan.final.PDF") == "pdf"
    assert kind_for("page.htm") == "html"
    assert kind_for("archive.tar.gz") is None
    assert kind_for("Makefile") is None
    assert kind_for("photo.jpeg") is None
    assert set(ALLOWED_EXTENSIONS.values()) == {"text", "markdown", "pdf", "html"}
    assert all(ext.startswith(".") and ext == ext.lower() for ext in ALLOWED_EXTENSIONS)


def test_unknown_kind_is_unsupported() -> None:
    with pytest.raises(UnsupportedType):
        parse(b"hello", "docx")
    assert issubclass(UnsupportedType, ParseError)


# --- text and Markdown ----------------------------------------------------------------------


def test_markdown_fixture_keeps_headings_and_facts() -> None:
    doc = parse(_read("guide.md"), "markdown")
    assert doc.kind == "markdown"
    assert doc.title == "Caring for a Sourdough Starter"
    assert doc.page_starts == ()
    assert "\n## Feeding Schedule\n" in doc.text
    assert "Feed the starter at a 1:5:5 ratio" in doc.text
    assert page_of(doc, 10) is None


def test_plain_text_has_no_title_and_normalised_newlines() -> None:
    doc = parse(b"# not a title here\r\nline two\rline three\n", "text")
    assert doc == ParsedDocument("# not a title here\nline two\nline three\n", "text")


def test_utf8_bom_is_stripped() -> None:
    doc = parse(codecs.BOM_UTF8 + "Grüße aus München".encode(), "text")
    assert doc.text == "Grüße aus München"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_decode_with_a_bom(encoding: str) -> None:
    # Python's "utf-16"/"utf-32" codecs write a BOM first.
    doc = parse("Ünïcödé text\nsecond line".encode(encoding), "text")
    assert doc.text == "Ünïcödé text\nsecond line"


def test_utf16_without_a_bom_is_refused_as_binary() -> None:
    assert _error("plain words".encode("utf-16-le"), "text").startswith("binary content")


def test_latin1_text_is_detected() -> None:
    text = (
        "Le café de la gare sert une crème brûlée très appréciée. "
        "À côté, la boulangerie vend des pains façonnés à la main, dès sept heures.\n"
    )
    doc = parse(text.encode("latin-1"), "text")
    assert doc.text == text


def test_nul_bytes_are_binary() -> None:
    assert _error(b"looks like text\x00\x01\x02 but is not", "text").startswith("binary content")


def test_mostly_control_characters_are_binary() -> None:
    data = bytes(random.Random(7).choices(range(1, 9), k=600)) + b"some words"
    assert _error(data, "markdown").startswith("binary content")


def test_random_bytes_are_refused() -> None:
    # Random bytes hold NULs and controls, or else decode as no known encoding.
    with pytest.raises(ParseError):
        parse(random.Random(1).randbytes(4096), "text")


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_text_is_refused(data: bytes) -> None:
    assert _error(data, "text") == "no text"


def test_too_long_text_is_refused() -> None:
    with pytest.raises(ParseError, match="too long"):
        parse(b"word " * 100, "text", max_chars=200)
    assert parse(b"word " * 40, "text", max_chars=200).text == "word " * 40


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_fixture_pages_and_title() -> None:
    doc = parse(_read("manual.pdf"), "pdf")
    assert doc.kind == "pdf"
    assert doc.title == "Bicycle Chain Maintenance Manual"
    assert len(doc.page_starts) == 2
    assert doc.page_starts[0] == 0
    page_two = doc.page_starts[1]
    assert doc.text[page_two - 2 : page_two] == "\n\n"
    assert doc.text[page_two:].startswith("Page two: measuring wear and replacement")

    first = doc.text.index("Degrease the chain every 500 kilometres")
    second = doc.text.index("Replace the chain when it has stretched 0.5 percent")
    assert page_of(doc, first) == 1
    assert page_of(doc, second) == 2
    assert page_of(doc, 0) == 1
    assert page_of(doc, page_two - 1) == 1
    assert page_of(doc, page_two) == 2
    assert page_of(doc, len(doc.text)) == 2
    assert page_of(doc, len(doc.text) + 1) is None
    assert page_of(doc, -1) is None


def test_page_of_bisects_many_pages() -> None:
    doc = ParsedDocument("a\n\nbb\n\nccc", "pdf", page_starts=(0, 3, 7))
    assert [page_of(doc, i) for i in range(len(doc.text))] == [1, 1, 1, 2, 2, 2, 2, 3, 3, 3]


def test_pdf_tolerates_leading_junk_before_the_header() -> None:
    doc = parse(b"garbage from a mail gateway\n" + _read("manual.pdf"), "pdf")
    assert "0.5 percent" in doc.text


def test_pdf_fixture_generator_is_in_sync() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pdf", FILES / "make_pdf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build_pdf(module.PAGES, "Bicycle Chain Maintenance Manual") == _read("manual.pdf")
    assert module.build_corrupt() == _read("corrupt.pdf")


def test_data_without_a_pdf_header_is_refused() -> None:
    assert _error(b"just some text, not a PDF", "pdf") == "unreadable PDF: no %PDF- header"
    assert _error(b" " * 2000 + _read("manual.pdf"), "pdf").startswith("unreadable PDF")


def test_corrupt_pdf_fixture_is_refused() -> None:
    message = _error(_read("corrupt.pdf"), "pdf")
    assert message.startswith(("unreadable PDF", "no extractable text"))
    assert "/" not in message.split(":", 1)[0]  # no paths, just a reason


@pytest.mark.parametrize("keep", [0.1, 0.4, 0.7, 0.95])
def test_truncated_pdf_is_refused(keep: float) -> None:
    data = _read("manual.pdf")
    with pytest.raises(ParseError):
        parse(data[: int(len(data) * keep)], "pdf")


def test_random_bytes_after_a_pdf_header_are_refused() -> None:
    junk = random.Random(42).randbytes(5000)
    message = _error(b"%PDF-1.7\n" + junk, "pdf")
    assert message.startswith(("unreadable PDF", "no extractable text"))
    assert "Traceback" not in message


def _writer_pdf(*, user_password: str | None = None) -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_without_text_needs_ocr() -> None:
    assert _error(_writer_pdf(), "pdf") == "no extractable text (a scanned PDF needs OCR)"


def test_password_protected_pdf_is_refused() -> None:
    assert _error(_writer_pdf(user_password="secret"), "pdf") == "encrypted PDF"


def test_pdf_encrypted_with_an_empty_user_password_opens() -> None:
    # Opens (it is only copy/print protected), then fails for the right reason: a blank page.
    assert _error(_writer_pdf(user_password=""), "pdf").startswith("no extractable text")


def test_pdf_over_max_chars_stops_early() -> None:
    with pytest.raises(ParseError, match="too long"):
        parse(_read("manual.pdf"), "pdf", max_chars=100)


# --- HTML -----------------------------------------------------------------------------------


def test_html_fixture_keeps_the_article_and_drops_boilerplate() -> None:
    doc = parse(_read("article.html"), "html")
    assert doc.kind == "html"
    assert doc.title == "The Lighthouse of Alexandria | Wonders Quarterly"
    assert doc.page_starts == ()
    lines = doc.text.splitlines()
    assert "# The Lighthouse of Alexandria" in lines
    assert "## Design and Construction" in lines
    assert "## Decline and Rediscovery" in lines
    assert "The Pharos stood about 100 metres tall" in doc.text
    assert "Jean-Yves Empereur" in doc.text
    for boilerplate in (
        "Subscribe to our newsletter",  # nav
        "Stories from the ancient world",  # header
        "Popular this week",  # sidebar
        "Nile cruise",  # advert
        "All rights reserved",  # footer
        "trackPageView",  # script
        "dataLayer",  # script in head
        "font-family",  # style
    ):
        assert boilerplate not in doc.text, boilerplate


def test_html_fragment_falls_back_to_body_text() -> None:
    # trafilatura returns None for a lone fragment; the lxml fallback still reads it.
    assert parse(b"<p>Open <b>daily</b> from nine.</p>", "html").text == "Open daily from nine."


def test_html_fallback_keeps_headings_and_drops_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trafilatura, "extract", lambda *args, **kwargs: None)
    doc = parse(_read("article.html"), "html")
    lines = doc.text.splitlines()
    assert "# The Lighthouse of Alexandria" in lines
    assert "## Design and Construction" in lines
    assert "The Pharos stood about 100 metres tall" in " ".join(lines)
    for dropped in ("trackPageView", "font-family", "Subscribe to our newsletter", "reserved"):
        assert dropped not in doc.text, dropped


def test_html_survives_a_trafilatura_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> str:
        raise RuntimeError("heuristics failed")

    monkeypatch.setattr(trafilatura, "extract", explode)
    assert "100 metres tall" in parse(_read("article.html"), "html").text


def test_html_honours_a_meta_charset() -> None:
    page = (
        '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body>'
        "<h1>Menü</h1><p>Crème brûlée coûte 5 €.</p></body></html>"
    ).encode("cp1252")
    doc = parse(page, "html")
    assert doc.title == "Café"
    assert "Crème brûlée coûte 5 €." in doc.text


def test_html_with_an_xml_declaration() -> None:
    page = b'<?xml version="1.0" encoding="utf-8"?><html><body><p>Hello there</p></body></html>'
    assert parse(page, "html").text == "Hello there"


@pytest.mark.parametrize(
    "page",
    [
        b"",
        b"  \n ",
        b"<html><head><title>Empty</title></head><body></body></html>",
        b"<html><body><script>only()</script><style>p{}</style></body></html>",
    ],
)
def test_html_without_text_is_refused(page: bytes) -> None:
    assert _error(page, "html") == "no text"


def test_binary_html_is_refused() -> None:
    assert _error(b"<html>\x00\x00\x00</html>", "html").startswith("binary content")


def test_html_utf16_label_without_a_bom_means_utf8() -> None:
    page = '<meta charset="utf-16"><title>Größe</title><p>Größe</p>'.encode()
    assert parse(page, "html").title == "Größe"
