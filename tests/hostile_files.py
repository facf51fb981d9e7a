"""Hostile files for ingestion tests, generated small: zip bombs in Office packages, PDF bombs (a stream that
inflates enormously, a page tree of many pages, a cross-reference stream of millions of entries) and text over
the token cap."""

import io
import random
import zipfile
import zlib

MB = 1 << 20


def docx_bomb(expanded_mb: int = 440) -> bytes:
    """A valid .docx whose word/document.xml expands to `expanded_mb` MB of paragraphs (~290x its compressed size:
    the issue's 1.5 MB file that expands to 440 MB)."""
    import docx

    plain = io.BytesIO()
    docx.Document().save(plain)
    src = zipfile.ZipFile(plain)
    out = io.BytesIO()
    paragraph = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    block = paragraph * (MB // len(paragraph))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                z.writestr(info, src.read(info.filename))
                continue
            head, _, _ = src.read(info.filename).partition(b"<w:body>")
            with z.open("word/document.xml", "w", force_zip64=True) as w:
                w.write(head + b"<w:body>")
                for _ in range(expanded_mb):
                    w.write(block)
                w.write(b"</w:body></w:document>")
    return out.getvalue()


def pdf(objects: list[bytes], trailer: bytes = b"/Root 1 0 R") -> bytes:
    """A PDF of these objects (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode %s >>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"


def _page(content: int, resources: bytes = b"<< >>") -> bytes:
    return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents %d 0 R /Resources %s >>" % (
        content, resources)


def small_pdf(text: str = "Hello") -> bytes:
    content = b"BT /F1 12 Tf 20 100 Td (%s) Tj ET" % text.encode()
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                _page(4, FONT), stream(content)])


def inflating(expanded_mb: int) -> bytes:
    """A zlib stream of `expanded_mb` MB of spaces, about 1000 times smaller, made without compressing it all:
    after a full flush deflate starts afresh, so one compressed megabyte can be repeated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b" " * MB
    piece = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(expanded_mb):
        checksum = zlib.adler32(block, checksum)
    return b"\x78\xda" + piece * expanded_mb + packer.flush() + checksum.to_bytes(4, "big")


FONT = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"


def pdf_inflating(expanded_mb: int = 1024) -> bytes:
    """One page whose content stream inflates to `expanded_mb` MB (~1 MB on disk for 1 GB)."""
    packed = inflating(expanded_mb)
    content = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                _page(4, FONT), content])


def pdf_many_pages(pages: int = 50_000) -> bytes:
    """A page tree of `pages` pages, every one the same tiny page object (a few hundred KB)."""
    kids = b" ".join([b"3 0 R"] * pages)
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
                _page(4, FONT), stream(b"BT /F1 12 Tf 20 100 Td (page) Tj ET")])


def pdf_many_objects(objects: int = 5_000_000) -> bytes:
    """A cross-reference stream of `objects` entries (all pointing at one object), compressed to a few KB."""
    head = b"%PDF-1.7\n"
    catalog_at = len(head)
    body = head + b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    pages_at = len(body)
    body += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    xref_at = len(body)
    entries = bytearray(b"\x00\x00\x00\x00\xff\xff")  # object 0: free
    entries += b"\x01" + catalog_at.to_bytes(4, "big") + b"\x00"
    entries += b"\x01" + pages_at.to_bytes(4, "big") + b"\x00"
    filler = b"\x01" + pages_at.to_bytes(4, "big") + b"\x00"
    entries += filler * (objects - 3)
    xref = stream(bytes(entries), b"/Type /XRef /Size %d /W [1 4 1] /Root 1 0 R" % objects)
    return body + b"%d 0 obj\n" % objects + xref + b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at


def tokens_text(tokens: int, seed: int = 7) -> bytes:
    """Plain text of at least `tokens` of the embedding model's tokens (words of 2 tokens each: ~3 bytes a token)."""
    rng = random.Random(seed)
    words = [f"w{n}" for n in range(1000, 9000)]
    return (" ".join(rng.choices(words, k=tokens // 2 + 1)) + "\n").encode()
