"""What one file may cost ingestion: the bounds' decisions, the streaming Office readers, the PDF checks, and the
reader process that contains whatever a parser does (memory limit, deadline). No stack: files are read here."""

import io
import os
import struct
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests import hostile_files
from worker import extract, ingest_limits, reader, spool
from worker.chunking import Chunk
from worker.ingest_limits import ExtractError, Limits

LIMITS = ingest_limits.from_settings()


def read(tmp_path: Path, name: str, data: bytes, limits: Limits = LIMITS) -> list[str]:
    path = tmp_path / name
    path.write_bytes(data)
    return list(extract.segments(name, path, limits))


def invalid(tmp_path: Path, name: str, data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(ExtractError) as e:
        read(tmp_path, name, data, limits)
    assert e.value.code == "invalid_file"
    return e.value.message


def test_defaults_are_the_settings_defaults() -> None:
    assert LIMITS.max_file_tokens == 5_000_000 and LIMITS.max_compression_ratio == 100
    assert Limits.from_json(LIMITS.to_json()) == LIMITS


def test_archive_checks() -> None:
    ingest_limits.check_archive_member("word/document.xml", 900_000, 1_000, 0, LIMITS)  # small: ratio not judged
    ingest_limits.check_archive_member("word/document.xml", 50 << 20, 1 << 20, 0, LIMITS)  # 50x: an ordinary doc
    with pytest.raises(ExtractError, match="expands 294 times"):
        ingest_limits.check_archive_member("word/document.xml", 461_964_532, 1_568_673, 0, LIMITS)
    with pytest.raises(ExtractError, match="more than 128 MB"):
        ingest_limits.check_archive_member("ppt/slides/slide9.xml", 10 << 20, 1 << 20, 120 << 20, LIMITS)
    ingest_limits.check_archive_directory(500, 60_000, LIMITS)
    with pytest.raises(ExtractError, match="20,000 parts"):
        ingest_limits.check_archive_directory(20_000, 1_000_000, LIMITS)
    with pytest.raises(ExtractError, match="parts"):  # a directory far larger than its count says
        ingest_limits.check_archive_directory(3, 400 << 20, LIMITS)


def test_token_pdf_and_work_checks() -> None:
    ingest_limits.check_tokens(5_000_000, LIMITS)
    with pytest.raises(ExtractError, match="more than 5,000,000 tokens"):
        ingest_limits.check_tokens(5_000_001, LIMITS)
    with pytest.raises(ExtractError, match="10,001 pages"):
        ingest_limits.check_pdf_pages(10_001, LIMITS)
    with pytest.raises(ExtractError, match="objects"):
        ingest_limits.check_pdf_objects(2_000_001, LIMITS)
    with pytest.raises(ExtractError, match="3600 s of work"):
        ingest_limits.check_work(3601, LIMITS)


def test_zip_directory_is_read_from_the_end_records() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in range(7):
            z.writestr(f"part{n}.xml", "<a/>")
    members, size = extract.zip_directory(io.BytesIO(out.getvalue()))
    assert members == 7 and 7 * 46 < size < 7 * 100
    # More members than the classic record counts: its fields say "see the Zip64 end records".
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 70_000, 70_000, 3_000_000, 0)
    zip64 += struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)
    zip64 += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    assert extract.zip_directory(io.BytesIO(zip64)) == (70_000, 3_000_000)
    with pytest.raises(ExtractError, match="not a valid Office"):
        extract.zip_directory(io.BytesIO(b"PK\x03\x04 not really a zip"))


def test_word_is_read_in_order_streaming(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Before the table.")
    table = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "a1", (0, 1): "b1", (1, 0): "a2", (1, 1): "b2"}.items():
        table.cell(r, c).text = text
    d.add_paragraph("After the table.")
    out = io.BytesIO()
    d.save(out)
    assert read(tmp_path, "doc.docx", out.getvalue()) == ["Before the table.\na1 | b1\na2 | b2\nAfter the table.\n"]


def test_word_text_boxes_once_and_long_documents_in_blocks(tmp_path: Path) -> None:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    mc = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    box = ("<w:p><w:r><mc:AlternateContent><mc:Choice><w:txbxContent><w:p><w:r><w:t>In the box</w:t></w:r></w:p>"
           "</w:txbxContent></mc:Choice><mc:Fallback><w:txbxContent><w:p><w:r><w:t>In the box</w:t></w:r></w:p>"
           "</w:txbxContent></mc:Fallback></mc:AlternateContent></w:r><w:r><w:t>Anchor</w:t><w:tab/>"
           "<w:t>text</w:t></w:r></w:p>")
    paragraph = "<w:p><w:r><w:t xml:space='preserve'>Line of the long document. </w:t></w:r></w:p>"
    body = box + paragraph * 5000
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", f"<w:document {w} {mc}><w:body>{body}</w:body></w:document>")
    blocks = read(tmp_path, "box.docx", out.getvalue())
    text = "".join(blocks)
    assert text.startswith("In the box\nAnchor\ttext\n") and text.count("In the box") == 1
    assert text.count("Line of the long document.") == 5000
    assert len(blocks) > 1 and all(len(b) <= extract.BLOCK for b in blocks)


def test_presentation_slides_in_order_with_notes_and_tables(tmp_path: Path) -> None:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    one = deck.slides.add_slide(deck.slide_layouts[1])
    one.shapes.title.text = "Roadmap"
    one.placeholders[1].text = "Ship the quantum toaster by autumn."
    one.notes_slide.notes_text_frame.text = "Mention the toaster."
    two = deck.slides.add_slide(deck.slide_layouts[5])
    two.shapes.title.text = "Budget"
    grid = two.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    grid.cell(0, 0).text, grid.cell(0, 1).text, grid.cell(1, 0).text, grid.cell(1, 1).text = "Q1", "Q2", "10", "12"
    out = io.BytesIO()
    deck.save(out)
    assert read(tmp_path, "deck.pptx", out.getvalue()) == [
        "Roadmap\nShip the quantum toaster by autumn.\nMention the toaster.\n", "Budget\nQ1 | Q2\n10 | 12\n"]


def test_zip_bomb_fails_before_parsing(tmp_path: Path) -> None:
    bomb = hostile_files.docx_bomb(expanded_mb=40)
    started = time.monotonic()
    message = invalid(tmp_path, "bomb.docx", bomb)
    assert "word/document.xml expands" in message and "zip bomb" in message, message
    assert time.monotonic() - started < 2
    # Within the ratio, the size of what is read still counts.
    message = invalid(tmp_path, "bomb.docx", bomb, replace(LIMITS, max_compression_ratio=10_000, max_expanded_mb=20))
    assert "more than 20 MB" in message


def test_a_package_of_too_many_parts_fails_before_its_directory_is_read(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in range(200):
            z.writestr(f"customXml/item{n}.xml", "<a/>")
    assert "200 parts" in invalid(tmp_path, "many.docx", out.getvalue(), replace(LIMITS, max_archive_members=100))


def test_damaged_packages_are_invalid(tmp_path: Path) -> None:
    assert "not a valid Office" in invalid(tmp_path, "x.docx", b"not a zip at all")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w:document><unclosed>")
    assert "could not be read" in invalid(tmp_path, "x.docx", out.getvalue())


def test_pdf_bombs_fail_on_their_bound(tmp_path: Path) -> None:
    assert read(tmp_path, "ok.pdf", hostile_files.small_pdf("Hello there")) == ["Hello there\n"]
    assert "50,000 pages" in invalid(tmp_path, "pages.pdf", hostile_files.pdf_many_pages(50_000))
    assert "over a safety limit: Maximum XRef stream entry limit reached: 5000000 > 2000000" in invalid(
        tmp_path, "objects.pdf", hostile_files.pdf_many_objects())
    small = replace(LIMITS, max_expanded_mb=4)
    assert invalid(tmp_path, "inflating.pdf", hostile_files.pdf_inflating(8), small) == \
        "A compressed stream in the PDF expands to more than 4 MB."


def test_segments_are_bounded_and_html_streams(tmp_path: Path) -> None:
    one_line = ("word " * 100_000).encode()  # a 500 KB line
    blocks = read(tmp_path, "line.txt", one_line)
    assert "".join(blocks) == one_line.decode() and max(map(len, blocks)) <= extract.BLOCK
    page = b"<html><script>var x = 1;</script><body>" + b"<p>Para   graph  text.</p>\n" * 20_000 + b"</body></html>"
    blocks = read(tmp_path, "page.html", page)
    assert len(blocks) > 1 and "".join(blocks) == "Para graph text.\n" * 20_000


def test_the_reader_process_streams_text_and_reports_errors(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("The lighthouse keeper feeds the cat at dawn.\n")
    assert list(reader.segments("notes.md", path, LIMITS, time.monotonic() + 60)) == [path.read_text()]
    path.write_bytes(b"text\x00with NUL")
    with pytest.raises(ExtractError, match="NUL"):
        list(reader.segments("nul.txt", path, LIMITS, time.monotonic() + 60))


def test_the_reader_process_is_killed_at_the_deadline(tmp_path: Path) -> None:
    path = tmp_path / "huge.docx"
    path.write_bytes(hostile_files.docx_bomb(expanded_mb=60))
    unbounded = replace(LIMITS, max_compression_ratio=1e9, max_expanded_mb=10_000)
    started = time.monotonic()
    with pytest.raises(ExtractError, match="took longer than"):
        for _ in reader.segments("huge.docx", path, unbounded, time.monotonic() + 2):
            pass
    assert time.monotonic() - started < 10


def test_the_reader_process_has_a_memory_limit(tmp_path: Path) -> None:
    """A parser that needs more memory than allowed (here: pypdf decoding a 300 MB stream, with the
    decompression cap lifted) ends the file as invalid, and the worker's own memory is untouched."""
    path = tmp_path / "inflating.pdf"
    path.write_bytes(hostile_files.pdf_inflating(300))
    hungry = replace(LIMITS, max_expanded_mb=10_000, read_memory_mb=200)
    with pytest.raises(ExtractError, match="more than 200 MB of memory"):
        list(reader.segments("inflating.pdf", path, hungry, time.monotonic() + 120))


def test_closing_the_reader_early_stops_the_child(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(hostile_files.tokens_text(2_000_000))
    texts = reader.segments("long.txt", path, LIMITS, time.monotonic() + 60)
    next(texts)
    assert len(readers()) == 1
    texts.close()  # e.g. the token cap was reached: the child is killed and reaped, not left reading
    assert readers() == []


def readers() -> list[int]:
    """This process's children (zombies included): only readers start here."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def test_spool_parts_round_trip() -> None:
    chunks = [Chunk(n, n * 400, f"chunk {n} text", list(range(n, n + 800))) for n in range(3)]
    assert spool.decode(spool.encode(chunks)) == chunks
