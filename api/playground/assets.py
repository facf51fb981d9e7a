"""The playground's static files, read once and kept in memory with their gzip form and an ETag.

They are small (the first load is well under 300 KB compressed), so every response is a dictionary lookup:
no disk access per request, no path from the URL ever touches the filesystem (no traversal), and gzip costs
nothing after the first request.
"""

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# License texts are served too (as plain text), so that what is shipped can be read where it is used.
PLAIN_TEXT = "text/plain; charset=utf-8"

# Everything the page may load comes from its own origin; model output cannot run script (it is sanitised, and
# this forbids inline and foreign scripts anyway); styles only from files; images also from blob: URLs (files
# the API serves behind the key, fetched and shown by the page).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compression does not pay (already compressed, or tiny)
    media_type: str
    etag: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    media_type = MEDIA_TYPES.get(path.suffix, PLAIN_TEXT)
    packed = gzip.compress(body, compresslevel=9, mtime=0) if media_type != "image/png" else None
    return Asset(body=body, gzipped=packed if packed is not None and len(packed) < len(body) else None,
                 media_type=media_type, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')


@cache
def assets() -> dict[str, Asset]:
    """Every file under static/, by its path relative to it ("index.html", "js/app.js", …)."""
    return {p.relative_to(STATIC_DIR).as_posix(): _asset(p)
            for p in sorted(STATIC_DIR.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client lists gzip (or *) without refusing it by q=0."""
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        params = params.strip()
        if params.startswith("q="):
            try:
                return float(params[2:]) > 0
            except ValueError:
                return False
        return True
    return False
