"""Regenerate the PDF fixtures: `manual.pdf` (a real two-page text PDF) and `corrupt.pdf`.

The PDF is written by hand rather than with a library, so the tests need no PDF writer and the
bytes stay stable: one Type1 Helvetica font (a standard font, so nothing is embedded), one
content stream per page drawing lines with BT/Tf/Td/Tj/ET, and an xref table whose byte
offsets are computed from the bytes actually written.

    .venv/bin/python tests/data/files/make_pdf.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

PAGES: list[list[str]] = [
    [
        "Bicycle Chain Maintenance Manual",
        "",
        "Page one: cleaning and lubrication",
        "",
        "A clean chain shifts smoothly and lasts far longer than a neglected one.",
        "Wipe the chain with a dry rag after every wet or muddy ride.",
        "Degrease the chain every 500 kilometres with a citrus-based solvent.",
        "Rinse the solvent away with warm water and let the chain dry completely.",
        "Apply one drop of lubricant to each roller while turning the cranks backwards.",
        "Wait ten minutes, then wipe off the excess lubricant from the outside plates.",
        "Too much oil on the outside collects grit that grinds down the drivetrain.",
    ],
    [
        "Page two: measuring wear and replacement",
        "",
        "Chains do not really stretch; the pins and rollers wear and the pitch grows.",
        "Measure wear with a chain checker tool or a ruler across twelve full links.",
        "Replace the chain when it has stretched 0.5 percent on an 11 or 12 speed drivetrain.",
        "On 10 speed and older drivetrains replace the chain at 0.75 percent stretch.",
        "A worn chain left in place for too long also wears out the cassette cogs.",
        "When fitting a new chain, size it with the chain on the big ring and big cog",
        "plus two extra links, and close it with a fresh quick link facing forwards.",
    ],
]


def _escape(line: str) -> str:
    # Literal strings in a content stream: backslash and parentheses must be escaped.
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(lines: list[str]) -> bytes:
    # 12 pt text, first line at y=760, 16 pt leading; the title is drawn at 18 pt.
    ops = ["BT", "/F1 18 Tf", "72 760 Td", f"({_escape(lines[0])}) Tj", "/F1 12 Tf"]
    for line in lines[1:]:
        ops.append("0 -16 Td")
        if line:
            ops.append(f"({_escape(line)}) Tj")
    ops.append("ET")
    return ("\n".join(ops) + "\n").encode("latin-1")


def build_pdf(pages: list[list[str]], title: str) -> bytes:
    # Object numbers: 1 catalog, 2 page tree, 3 font, 4 info, then (page, content) pairs.
    first_page = 5
    page_ids = [first_page + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] "
            f"/Count {len(pages)} >>"
        ).encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: f"<< /Title ({_escape(title)}) /Producer (make_pdf.py) >>".encode("latin-1"),
    }
    for page_id, lines in zip(page_ids, pages, strict=True):
        stream = _content(lines)
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"endstream"
        )

    # The binary comment line tells transfer tools the file is binary (PDF 1.7, 7.5.2).
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n"
    size = max(objects) + 1
    xref_at = len(out)
    # Each xref entry is exactly 20 bytes: 10-digit offset, 5-digit generation, type, EOL.
    out += f"xref\n0 {size}\n".encode() + b"0000000000 65535 f \n"
    for num in range(1, size):
        out += f"{offsets[num]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R /Info 4 0 R >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def build_corrupt() -> bytes:
    # A real header followed by bytes that are no PDF structure at all: no objects, no xref.
    junk = bytes((i * 73 + 41) % 256 for i in range(2048))
    return b"%PDF-1.4\n" + junk + b"\n%%EOF\n"


def main() -> None:
    (HERE / "manual.pdf").write_bytes(build_pdf(PAGES, "Bicycle Chain Maintenance Manual"))
    (HERE / "corrupt.pdf").write_bytes(build_corrupt())


if __name__ == "__main__":
    main()
