"""OpenAI's published OpenAPI documents the conformance suite runs against: which ones (pinned commits of
github.com/openai/openai-openapi, each with the sha256 of its bytes), where they are cached, and the download.

A document is only ever used after its sha256 matched: a download lands in a temporary file beside its cache
path and is renamed into place once verified, so neither a truncated transfer nor a changed upstream file can
become the oracle, and two test sessions downloading at once cannot see each other's half-written file."""

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

# raw.githubusercontent.com serves a file's bytes at any commit; OPENAPI_UPSTREAM_URL points at a mirror of it.
UPSTREAM_URL = "https://raw.githubusercontent.com/openai/openai-openapi"


@dataclass(frozen=True)
class Pin:
    """One published document at one commit, and what the suite calls its trimmed form."""

    trimmed_name: str  # the trimmed spec's file name in OPENAPI_DIR (as in ../shared/openapi)
    beta: str  # the OpenAI-Beta header the document describes
    commit: str
    path: str  # the document's path in the repository at that commit
    sha256: str


PINS = (
    # The last spec before v2: the v1 Assistants API (2024-04-16).
    Pin("assistants-only_v1-era_af97d0a.yaml", "assistants=v1", "af97d0a6f1fcc5dcbb6e8135b3b8a7b8e22b7d0a",
        "openapi.yaml", "65c7fcaca9d946a8830acd88c419944ecef481122143c787ba8261ff56057ccc"),
    # The first spec of v2: vector stores, file_search, attachments (2024-04-17).
    Pin("assistants-only_v2-first_d3f8430.yaml", "assistants=v2", "d3f8430242c994bdd972dabdd10c2022a2f39152",
        "openapi.yaml", "e6bc786b09d25bbb9504dde48a9cc5b0b8f552b37fdb4729703bb309786a0c67"),
    # The repository's newest spec when this pin was last moved (2026-08-21).
    Pin("assistants-only_head_f85dbe2.yaml", "assistants=v2", "f85dbe223d40e1a31cba812ab2d755c7e98a92a3",
        "openapi.yaml", "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"),
)


def upstream_url() -> str:
    return os.environ.get("OPENAPI_UPSTREAM_URL", UPSTREAM_URL).rstrip("/")


def url_of(pin: Pin) -> str:
    return f"{upstream_url()}/{pin.commit}/{pin.path}"


def cache_dir() -> Path:
    """Outside the repository, so that a fresh clone or `git clean` does not download again."""
    if explicit := os.environ.get("OPENAPI_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "selfhosted-assistants" / "openai-openapi"


def cache_path(pin: Pin) -> Path:
    # The URL's own layout (commit/path), so the instructions for copying a file in by hand read plainly.
    return cache_dir() / pin.commit / pin.path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class DownloadFailed(Exception):
    """The document could not be fetched, or what was fetched is not the pinned document."""


def download(pin: Pin, timeout: float = 60.0) -> Path:
    """Fetch the pinned document into the cache and return its path; nothing is cached unless it verified."""
    url, dest = url_of(pin), cache_path(pin)
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(timeout, connect=15.0)) as resp:
            if resp.status_code != 200:
                raise DownloadFailed(f"HTTP {resp.status_code} from {url}")
            # Only now: an offline attempt leaves nothing behind in the cache, not even a folder.
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.iter_bytes():
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != pin.sha256:
                    raise DownloadFailed(f"sha256 {digest.hexdigest()} of what {url} served is not the pinned "
                                         f"{pin.sha256}")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
    except (httpx.HTTPError, OSError) as exc:
        raise DownloadFailed(f"{type(exc).__name__}: {exc}") from exc
    return dest
