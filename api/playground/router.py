"""GET /playground: the playground's page and files, with a Content-Security-Policy, gzip and ETags.

Nothing here needs the API key: the page asks for one and sends it with its own API calls (same origin).
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.errors import APIError
from api.playground.assets import SECURITY_HEADERS, accepts_gzip, assets

router = APIRouter(include_in_schema=False)


@router.get("/playground")
async def playground_root() -> RedirectResponse:
    # The page loads its files by relative URLs, which resolve under /playground/ only with the slash.
    return RedirectResponse("/playground/", status_code=308)


@router.get("/playground/")
async def playground_page(request: Request) -> Response:
    return _serve("index.html", request)


@router.get("/playground/{path:path}")
async def playground_file(path: str, request: Request) -> Response:
    return _serve(path, request)


def _serve(path: str, request: Request) -> Response:
    asset = assets().get(path)
    if asset is None:
        raise APIError(404, f"Invalid URL (GET {request.url.path})")
    # no-cache: the browser revalidates each load (a 304 costs a round trip, not the bytes), so a new
    # release is picked up at once without versioned file names.
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.body, media_type=asset.media_type, headers=headers)
