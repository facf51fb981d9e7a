"""What one file may cost ingestion, and the checks against it: pure decisions, no I/O (worker/extract.py and
worker/ingest.py measure, these decide). A file over a bound is `invalid_file` with a reason a user can act on.

The bounds, and why each exists:
- archive members (.docx/.pptx are zip packages): the central directory is parsed whole before any member is
  read, so its size is checked first from the end-of-directory record; a member read may not expand more than
  `max_compression_ratio` times its compressed size (a 1.5 MB .docx whose document.xml is 440 MB is a 290x zip
  bomb; real Office XML compresses 5-20x), and the members read may not expand to more than `max_expanded_mb`;
- PDFs: the object count (cross-reference entries) and page count are checked before any page is read, and no
  stream may decode to more than `max_expanded_mb` (a page whose content inflates to gigabytes);
- tokens extracted from one file, counted before any embedding (OpenAI's cap for file_search: 5M);
- time and memory to read a file (a child process with a memory limit, killed at a deadline), and the work on
  one file in all (reading and embedding).
"""

import json
from dataclasses import asdict, dataclass

MB = 1 << 20
# Ratios are not judged on small members: a 40 KB styles.xml of repeated defaults compresses 150x and is harmless.
RATIO_GRACE_BYTES = 1 * MB
# Bytes of central directory allowed per member: a record is 46 bytes plus the member's name and extra fields.
DIRECTORY_BYTES_PER_MEMBER = 1024


class ExtractError(Exception):
    """The file cannot be indexed: `code` is the vector store file's last_error.code (`unsupported_file`,
    `invalid_file`), `message` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Limits:
    """The bounds (the INGEST_* settings: shared/config.py documents each)."""

    max_file_tokens: int
    max_expanded_mb: int
    max_compression_ratio: float
    max_archive_members: int
    max_pdf_pages: int
    max_pdf_objects: int
    read_seconds: float
    read_memory_mb: int
    file_seconds: float
    slice_seconds: float

    @property
    def max_expanded_bytes(self) -> int:
        return self.max_expanded_mb * MB

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> "Limits":
        return cls(**json.loads(raw))


def from_settings() -> "Limits":
    from shared.config import get_settings

    s = get_settings()
    return Limits(max_file_tokens=s.ingest_max_file_tokens, max_expanded_mb=s.ingest_max_expanded_mb,
                  max_compression_ratio=s.ingest_max_compression_ratio,
                  max_archive_members=s.ingest_max_archive_members, max_pdf_pages=s.ingest_max_pdf_pages,
                  max_pdf_objects=s.ingest_max_pdf_objects, read_seconds=s.ingest_read_seconds,
                  read_memory_mb=s.ingest_read_memory_mb, file_seconds=s.ingest_file_seconds,
                  slice_seconds=s.ingest_slice_seconds)


def _invalid(message: str) -> ExtractError:
    return ExtractError("invalid_file", message)


def check_archive_directory(members: int, directory_bytes: int, limits: Limits) -> None:
    """From the end-of-directory record, before the directory itself is parsed (it would be, whole)."""
    directory_limit = limits.max_archive_members * DIRECTORY_BYTES_PER_MEMBER
    if members > limits.max_archive_members or directory_bytes > directory_limit:
        raise _invalid(f"The document is a package of {members:,} parts ({directory_bytes:,} bytes of index); at "
                       f"most {limits.max_archive_members:,} are read.")


def check_archive_member(name: str, expanded: int, compressed: int, expanded_so_far: int, limits: Limits) -> None:
    """Before a member is read: its declared size (which the zip reader enforces: a member that inflates past it
    fails its CRC) against the ratio and the running total."""
    if expanded > RATIO_GRACE_BYTES and expanded > limits.max_compression_ratio * max(compressed, 1):
        raise _invalid(f"The document's part {name} expands {expanded / max(compressed, 1):,.0f} times "
                       f"({compressed:,} bytes to {expanded:,}): more than the {limits.max_compression_ratio:g}x "
                       "allowed, as in a zip bomb.")
    if expanded_so_far + expanded > limits.max_expanded_bytes:
        raise _invalid(f"The document expands to more than {limits.max_expanded_mb} MB of text parts "
                       f"({name} alone is {expanded:,} bytes).")


def check_pdf_objects(objects: int, limits: Limits) -> None:
    if objects > limits.max_pdf_objects:
        raise _invalid(f"The PDF has {objects:,} objects; at most {limits.max_pdf_objects:,} are read.")


def check_pdf_pages(pages: int, limits: Limits) -> None:
    if pages > limits.max_pdf_pages:
        raise _invalid(f"The PDF has {pages:,} pages or more; at most {limits.max_pdf_pages:,} are read.")


def check_tokens(tokens: int, limits: Limits) -> None:
    if tokens > limits.max_file_tokens:
        raise _invalid(f"The file has more than {limits.max_file_tokens:,} tokens of text, the most a file may "
                       "have for file_search.")


def read_overtime(limits: Limits) -> ExtractError:
    return _invalid(f"Reading the file's text took longer than {limits.read_seconds:g} s, the most a file may "
                    "take.")


def read_out_of_memory(limits: Limits) -> ExtractError:
    return _invalid(f"Reading the file's text needs more than {limits.read_memory_mb} MB of memory, the most a "
                    "file may use.")


def check_work(spent_seconds: float, limits: Limits) -> None:
    """Work on one file in all (reading and every slice of embedding), not counting time waiting in the queue."""
    if spent_seconds > limits.file_seconds:
        raise _invalid(f"Indexing the file took longer than {limits.file_seconds:g} s of work, the most a file "
                       "may take.")
