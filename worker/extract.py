"""Text out of uploaded files, for file_search: the formats OpenAI's file_search read, page by page or block by
block so that a large file never sits in memory as one string.

A file this cannot read ends its vector store file `failed` with a reason (`unsupported_file` for a format we do
not read, `invalid_file` for a damaged, encrypted or non-text file), never a stuck `in_progress`.
"""

import html.parser
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

BLOCK = 64 * 1024  # characters per block of plain text: bounds the tokenizer's working set

# OpenAI's list for file_search (and v1 retrieval), plus a few plain-text cousins.
TEXT = {".c", ".cpp", ".cc", ".h", ".hpp", ".cs", ".css", ".csv", ".go", ".html", ".htm", ".java", ".js", ".json",
        ".md", ".markdown", ".php", ".py", ".rb", ".sh", ".tex", ".ts", ".txt", ".xml", ".yaml", ".yml", ".rst",
        ".log", ".sql", ".jsonl", ".tsv", ".kt", ".rs", ".swift", ".scala", ".r", ".m", ".pl", ".lua", ".ini",
        ".toml", ".cfg", ".bat", ".ps1", ".vue", ".jsx", ".tsx"}
DOCUMENTS = {".pdf", ".docx", ".pptx"}
SUPPORTED = TEXT | DOCUMENTS


class ExtractError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def suffix(filename: str) -> str:
    return Path(filename).suffix.lower()


def check_supported(filename: str) -> None:
    ext = suffix(filename)
    if ext not in SUPPORTED:
        kind = f"'{ext}'" if ext else "without an extension"
        raise ExtractError("unsupported_file", f"Files {kind} are not supported for file_search. Supported: "
                           + ", ".join(sorted(SUPPORTED)) + ".")


def segments(filename: str, path: Path) -> Iterator[str]:
    """The file's text in order, as pages (PDF, slides) or blocks (text, Word) that concatenate to the whole:
    a text file's blocks split at whitespace and keep it, pages end with a newline."""
    check_supported(filename)
    ext = suffix(filename)
    if ext == ".pdf":
        yield from _pdf(path)
    elif ext == ".docx":
        yield from _docx(path)
    elif ext == ".pptx":
        yield from _pptx(path)
    elif ext in (".html", ".htm"):
        yield _html("".join(_text_blocks(path)))
    else:
        yield from _text_blocks(path)


def _text_blocks(path: Path) -> Iterator[str]:
    with open(path, "rb") as f:
        head = f.read(8192)
        if b"\x00" in head:
            raise ExtractError("invalid_file", "The file is not text (it contains NUL bytes).")
        f.seek(0)
        encoding = "utf-8-sig"
        try:
            head.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:  # not just a character cut at the block's end
                encoding = "latin-1"  # legacy 8-bit text: every byte decodes
        text = io.TextIOWrapper(f, encoding=encoding, errors="replace", newline=None)
        carry = ""
        while True:
            block = text.read(BLOCK)
            if not block:
                break
            block = carry + block
            cut = max(block.rfind("\n"), block.rfind(" "))  # blocks end at whitespace: no word is split
            if cut <= 0 or len(block) < BLOCK // 2:
                carry = ""
            else:
                block, carry = block[:cut], block[cut:]
            yield block
        if carry:
            yield carry


class _HTMLText(html.parser.HTMLParser):
    SKIP = {"script", "style", "noscript", "template"}
    BREAK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html(source: str) -> str:
    parser = _HTMLText()
    parser.feed(source)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _pdf(path: Path) -> Iterator[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))  # reads pages lazily from the file
        # Encrypted with an empty user password (common for "protected" PDFs) still reads; anything else not.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError("invalid_file", "The PDF is encrypted and cannot be read.")
        for page in reader.pages:
            text = page.extract_text() or ""
            if text.strip():
                yield text + "\n"
    except ExtractError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise ExtractError("invalid_file", f"The PDF could not be read: {e}") from e


def _office(path: Path) -> IO[bytes]:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ExtractError("invalid_file", "The file is not a valid Office Open XML document.")
    return open(path, "rb")


def _docx(path: Path) -> Iterator[str]:
    import docx

    with _office(path) as f:
        try:
            document = docx.Document(f)
        except Exception as e:  # python-docx raises a variety of errors for damaged packages
            raise ExtractError("invalid_file", f"The Word document could not be read: {e}") from e
    block: list[str] = []
    size = 0
    for paragraph in document.paragraphs:
        block.append(paragraph.text)
        size += len(paragraph.text)
        if size >= BLOCK:
            yield "\n".join(block) + "\n"
            block, size = [], 0
    for table in document.tables:
        for row in table.rows:
            block.append(" | ".join(cell.text for cell in row.cells))
    if any(b.strip() for b in block):
        yield "\n".join(block) + "\n"


def _pptx(path: Path) -> Iterator[str]:
    import pptx

    with _office(path) as f:
        try:
            deck = pptx.Presentation(f)
        except Exception as e:
            raise ExtractError("invalid_file", f"The presentation could not be read: {e}") from e
    for slide in deck.slides:
        texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text)
        text = "\n".join(t for t in texts if t.strip())
        if text:
            yield text + "\n"
