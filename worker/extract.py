"""Text out of uploaded files, for file_search: the formats OpenAI's file_search read, page by page or block by
block, streaming, so that a large file never sits in memory as one string or one document tree.

A file this cannot read ends its vector store file `failed` with a reason (`unsupported_file` for a format we do
not read, `invalid_file` for a damaged, encrypted, non-text or hostile file), never a stuck `in_progress`.

Untrusted input: every bound of worker/ingest_limits.py that can be checked before parsing is checked first (a
package's directory and each part's declared size and ratio, a PDF's object and page counts), and decoding is
capped (PDF streams; a zip member cannot inflate past its declared size without failing its CRC). Office
documents are read as zip members streamed through an incremental XML parser that keeps only the open elements,
never through a library that loads the whole package. This code runs in a child process with a memory limit and
a deadline (worker/reader.py), which contains whatever a parser does that these checks did not foresee.
"""

import html.parser
import io
import posixpath
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from worker import ingest_limits as bounds
from worker.ingest_limits import ExtractError as ExtractError
from worker.ingest_limits import Limits

BLOCK = 64 * 1024  # characters per segment at most: bounds the tokenizer's working set

# OpenAI's list for file_search (and v1 retrieval), plus a few plain-text cousins.
TEXT = {".c", ".cpp", ".cc", ".h", ".hpp", ".cs", ".css", ".csv", ".go", ".html", ".htm", ".java", ".js", ".json",
        ".md", ".markdown", ".php", ".py", ".rb", ".sh", ".tex", ".ts", ".txt", ".xml", ".yaml", ".yml", ".rst",
        ".log", ".sql", ".jsonl", ".tsv", ".kt", ".rs", ".swift", ".scala", ".r", ".m", ".pl", ".lua", ".ini",
        ".toml", ".cfg", ".bat", ".ps1", ".vue", ".jsx", ".tsx"}
DOCUMENTS = {".pdf", ".docx", ".pptx"}
SUPPORTED = TEXT | DOCUMENTS


def suffix(filename: str) -> str:
    return Path(filename).suffix.lower()


def check_supported(filename: str) -> None:
    ext = suffix(filename)
    if ext not in SUPPORTED:
        kind = f"'{ext}'" if ext else "without an extension"
        raise ExtractError("unsupported_file", f"Files {kind} are not supported for file_search. Supported: "
                           + ", ".join(sorted(SUPPORTED)) + ".")


def segments(filename: str, path: Path, limits: Limits) -> Iterator[str]:
    """The file's text in order, as pages (PDF, slides) or blocks (text, Word) that concatenate to the whole, none
    longer than BLOCK characters: a text file's blocks split at whitespace and keep it, pages end with a newline."""
    check_supported(filename)
    ext = suffix(filename)
    if ext == ".pdf":
        source = _pdf(path, limits)
    elif ext == ".docx":
        source = _docx(path, limits)
    elif ext == ".pptx":
        source = _pptx(path, limits)
    elif ext in (".html", ".htm"):
        source = _html(path)
    else:
        source = _text_blocks(path)
    yield from _bounded(source)


def _bounded(source: Iterator[str]) -> Iterator[str]:
    """Pieces of at most BLOCK characters (a PDF page or a Word paragraph may be megabytes), cut at whitespace."""
    for segment in source:
        while len(segment) > BLOCK:
            cut = max(segment.rfind("\n", 0, BLOCK), segment.rfind(" ", 0, BLOCK))
            if cut <= 0:
                cut = BLOCK
            yield segment[:cut]
            segment = segment[cut:]
        if segment:
            yield segment


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
        self.size = 0
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
            self.size += len(data)

    def take(self, final: bool) -> str:
        """The text's complete lines so far, whitespace collapsed (all of it when final)."""
        text = "".join(self.parts)
        cut = len(text) if final else text.rfind("\n") + 1
        self.parts, self.size = [text[cut:]], len(text) - cut
        lines = (" ".join(line.split()) for line in text[:cut].splitlines())
        return "".join(line + "\n" for line in lines if line)


def _html(path: Path) -> Iterator[str]:
    parser = _HTMLText()
    for block in _text_blocks(path):
        parser.feed(block)
        if parser.size >= BLOCK and (text := parser.take(final=False)):
            yield text
    parser.close()
    if text := parser.take(final=True):
        yield text


def _pdf(path: Path, limits: Limits) -> Iterator[str]:
    import pypdf
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError
    from pypdf.generic import DictionaryObject

    cap = limits.max_expanded_bytes
    # No stream may decode to more than the cap, whatever its filter (pypdf's own defaults are 75 MB each).
    pypdf.overwrite_configuration(
        zlib_maximum_output_length=cap, lzw_maximum_output_length=cap, run_length_maximum_output_length=cap,
        brotli_maximum_output_length=cap, jbig2_maximum_output_length=cap, maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap)
    try:
        reader = PdfReader(str(path), xref_stream_maximum_entries=limits.max_pdf_objects)
        bounds.check_pdf_objects(len(reader.xref_objStm) + sum(len(v) for v in reader.xref.values()), limits)
        # Encrypted with an empty user password (common for "protected" PDFs) still reads; anything else not.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError("invalid_file", "The PDF is encrypted and cannot be read.")
        pages = reader.root_object["/Pages"].get_object()
        declared = pages.get("/Count") if isinstance(pages, DictionaryObject) else None  # before the tree is walked
        if isinstance(declared, int):
            bounds.check_pdf_pages(declared, limits)
        for number, page in enumerate(reader.pages, start=1):  # the declared count may lie
            bounds.check_pdf_pages(number, limits)
            text = page.extract_text() or ""
            if text.strip():
                yield text + "\n"
    except ExtractError:
        raise
    except RecursionError as e:
        raise ExtractError("invalid_file", "The PDF's objects are nested too deeply to be read.") from e
    except MemoryError:
        raise
    except Exception as e:  # a damaged PDF makes pypdf raise almost anything, a limit's error wrapped in others
        limit = next((c for c in _chain(e) if isinstance(c, LimitReachedError)), None)
        if limit is not None and "decompress" in str(limit):
            raise ExtractError("invalid_file", f"A compressed stream in the PDF expands to more than "
                                               f"{limits.max_expanded_mb} MB.") from e
        if limit is not None:
            raise ExtractError("invalid_file", f"The PDF is over a safety limit: {limit}") from e
        raise ExtractError("invalid_file", f"The PDF could not be read: {e}") from e


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


# ---- Office Open XML (.docx, .pptx): zip packages of XML parts ------------------------------------------------
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")


def zip_directory(f: IO[bytes]) -> tuple[int, int]:
    """(members, central directory bytes) from the end records, as the zip reader will find them; read before
    that reader parses the whole directory into memory."""
    size = f.seek(0, io.SEEK_END)
    start = max(0, size - (_EOCD.size + 0xFFFF))  # the record, then a comment of at most 64 KB
    f.seek(start)
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise ExtractError("invalid_file", "The file is not a valid Office Open XML document.")
    members, directory_bytes = _EOCD.unpack_from(tail, at)[4:6]
    loc = at - _EOCD64_LOCATOR.size
    if (members == 0xFFFF or directory_bytes == 0xFFFFFFFF) and loc >= 0 and tail[loc:loc + 4] == b"PK\x06\x07":
        f.seek(_EOCD64_LOCATOR.unpack_from(tail, loc)[2])
        record = f.read(_EOCD64.size)
        if len(record) == _EOCD64.size and record[:4] == b"PK\x06\x06":
            members, directory_bytes = _EOCD64.unpack(record)[7:9]
    return int(members), int(directory_bytes)


def _local(tag: object) -> str:
    """An element's name without its namespace (transitional and strict OOXML name the same things)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class _Package:
    """A zip package whose parts are read only after their declared sizes passed the limits."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.limits, self.expanded = limits, 0
        with open(path, "rb") as f:
            bounds.check_archive_directory(*zip_directory(f), limits)
        self.zip = zipfile.ZipFile(path)

    def __enter__(self) -> "_Package":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.zip.close()

    def has(self, name: str) -> bool:
        try:
            self.zip.getinfo(name)
        except KeyError:
            return False
        return True

    def elements(self, name: str, events: tuple[str, ...] = ("start", "end")) -> Iterator[tuple[str, Any]]:
        """(event, element) of a part's XML, streamed; each finished element is dropped once the caller has seen
        it, so memory holds only the open elements (the parser's own depth and text-node limits stay on)."""
        from lxml import etree

        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise ExtractError("invalid_file", f"The document has no part {name}.") from None
        bounds.check_archive_member(name, info.file_size, info.compress_size, self.expanded, self.limits)
        self.expanded += info.file_size
        with self.zip.open(info) as stream:
            for event, el in etree.iterparse(stream, events=events, resolve_entities=False, no_network=True,
                                             load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True):
                yield event, el
                if event == "end":
                    el.clear()
                    parent = el.getparent()
                    if parent is not None:
                        while el.getprevious() is not None:
                            del parent[0]

    def relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """A part's relationships: id -> (type's last word, target part name); external targets left out."""
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", name + ".rels")
        out: dict[str, tuple[str, str]] = {}
        if not self.has(rels):
            return out
        for _, el in self.elements(rels, ("end",)):
            if _local(el.tag) == "Relationship" and el.get("TargetMode") != "External":
                target = el.get("Target") or ""
                path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                    posixpath.join(folder, target))
                out[el.get("Id") or ""] = ((el.get("Type") or "").rpartition("/")[2], path)
        return out

    def main_part(self, default: str) -> str:
        for kind, target in self.relationships("").values():
            if kind == "officeDocument":
                return target
        return default


def _office(read: Any, path: Path, limits: Limits, what: str) -> Iterator[str]:
    """Errors of a damaged package (bad zip, encrypted member, bad XML) as `invalid_file`."""
    from lxml import etree

    try:
        with _Package(path, limits) as package:
            yield from read(package)
    except ExtractError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, OSError,
            ValueError, KeyError, etree.XMLSyntaxError) as e:
        raise ExtractError("invalid_file", f"The {what} could not be read: {e}") from e


class _Lines:
    """Lines gathered into blocks of about BLOCK characters."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0

    def add(self, line: str) -> str | None:
        self.lines.append(line)
        self.size += len(line) + 1
        return self.flush() if self.size >= BLOCK else None

    def flush(self) -> str | None:
        block = "\n".join(self.lines) + "\n" if any(line.strip() for line in self.lines) else None
        self.lines, self.size = [], 0
        return block


def _docx(path: Path, limits: Limits) -> Iterator[str]:
    return _office(_read_docx, path, limits, "Word document")


def _read_docx(package: _Package) -> Iterator[str]:
    """The main document's paragraphs in order; a table row as its cells' text joined by " | " (a cell's
    paragraphs by newlines); text boxes as their own lines; deleted text, field codes and the fallback copies
    of alternate content left out."""
    out = _Lines()
    paragraphs: list[list[str]] = []  # open paragraphs (a text box's sit inside its anchor's), innermost last
    cells: list[list[str]] = []  # open table cells: their lines
    rows: list[list[str]] = []  # open table rows: their cells' texts
    fallback = 0

    def line(text: str) -> str | None:
        if cells:
            cells[-1].append(text)
            return None
        return out.add(text)

    for event, el in package.elements(package.main_part("word/document.xml")):
        name = _local(el.tag)
        if name == "Fallback":
            fallback += 1 if event == "start" else -1
            continue
        if fallback:
            continue
        if event == "start":
            if name == "p":
                paragraphs.append([])
            elif name == "tc":
                cells.append([])
            elif name == "tr":
                rows.append([])
            continue
        block = None
        if name == "t" and paragraphs:
            paragraphs[-1].append(el.text or "")
        elif name == "tab" and paragraphs:
            paragraphs[-1].append("\t")
        elif name in ("br", "cr") and paragraphs:
            paragraphs[-1].append("\n")
        elif name == "p" and paragraphs:
            block = line("".join(paragraphs.pop()))
        elif name == "tc" and cells:
            cell = "\n".join(cells.pop())
            if rows:
                rows[-1].append(cell)
        elif name == "tr" and rows:
            block = line(" | ".join(rows.pop()))
        if block:
            yield block
    if block := out.flush():
        yield block


def _pptx(path: Path, limits: Limits) -> Iterator[str]:
    return _office(_read_pptx, path, limits, "presentation")


def _read_pptx(package: _Package) -> Iterator[str]:
    """Each slide's shapes' text (tables as rows of cells joined by " | "), then its notes, slide by slide in the
    presentation's order."""
    presentation = package.main_part("ppt/presentation.xml")
    targets = package.relationships(presentation)
    order = [el.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
             or el.get("{http://purl.oclc.org/ooxml/officeDocument/relationships}id")
             for event, el in package.elements(presentation, ("end",)) if _local(el.tag) == "sldId"]
    for rel in order:
        kind, slide = targets.get(rel or "", ("", ""))
        if kind != "slide" or not package.has(slide):
            continue
        texts = list(_shape_texts(package, slide, body_only=False))
        for note_kind, notes in package.relationships(slide).values():
            if note_kind == "notesSlide" and package.has(notes):
                texts.extend(_shape_texts(package, notes, body_only=True))
        text = "\n".join(t for t in texts if t.strip())
        if text:
            yield text + "\n"


def _shape_texts(package: _Package, part: str, *, body_only: bool) -> Iterator[str]:
    """A slide's (or notes page's) shapes' text, shape by shape; with body_only, only the body placeholder's
    (a notes page's other placeholders hold the slide image and its number)."""
    shapes: list[tuple[list[str], list[str]]] = []  # open shapes: (lines, placeholder type)
    paragraphs: list[list[str]] = []
    cells: list[list[str]] = []
    rows: list[list[str]] = []
    for event, el in package.elements(part):
        name = _local(el.tag)
        if event == "start":
            if name in ("sp", "graphicFrame"):
                shapes.append(([], []))
            elif name == "ph" and shapes:
                shapes[-1][1].append(el.get("type") or "obj")  # the schema's default
            elif name == "p":
                paragraphs.append([])
            elif name == "tc":
                cells.append([])
            elif name == "tr":
                rows.append([])
            continue
        if name == "t" and paragraphs:
            paragraphs[-1].append(el.text or "")
        elif name == "br" and paragraphs:
            paragraphs[-1].append("\n")
        elif name == "p" and paragraphs:
            text = "".join(paragraphs.pop())
            if cells:
                cells[-1].append(text)
            elif shapes:
                shapes[-1][0].append(text)
        elif name == "tc" and cells:
            cell = "\n".join(cells.pop())
            if rows:
                rows[-1].append(cell)
        elif name == "tr" and rows:
            row = " | ".join(rows.pop())
            if shapes:
                shapes[-1][0].append(row)
        elif name in ("sp", "graphicFrame") and shapes:
            lines, placeholder = shapes.pop()
            if not body_only or placeholder == ["body"]:
                yield "\n".join(lines)
