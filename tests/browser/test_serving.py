"""How the playground is served: same origin as the API, a Content-Security-Policy without inline scripts or
styles, gzip, revalidation by ETag, and a first load under 300 KB compressed with no request to another origin."""

import httpx

from api.playground.assets import assets
from tests.browser.conftest import Playground
from tests.stack import Stack

FIRST_LOAD_BUDGET = 300 * 1024


def test_page_headers_gzip_and_etag(stack: Stack) -> None:
    with httpx.Client(base_url=stack.root_url, timeout=30) as http:
        r = http.get("/playground", follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == "/playground/"
        r = http.get("/playground/", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["content-encoding"] == "gzip" and '<div id="app">' in r.text
        csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
        assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["default-src"] == "'none'"
        assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        assert http.get("/playground/", headers={"If-None-Match": r.headers["etag"]}).status_code == 304

        js = http.get("/playground/js/main.js", headers={"Accept-Encoding": "identity"})
        assert js.headers["content-type"].startswith("text/javascript") and "content-encoding" not in js.headers
        assert js.content == assets()["js/main.js"].body
        licence = http.get("/playground/vendor/dompurify/LICENSE")
        assert licence.status_code == 200 and "Apache License" in licence.text

        missing = http.get("/playground/js/nothing.js")
        assert missing.status_code == 404 and missing.json()["error"]["message"] == \
            "Invalid URL (GET /playground/js/nothing.js)"
        assert http.get("/playground/../api/main.py").status_code == 404
        assert http.get("/playground/%2e%2e/vendor.json").status_code == 404


def test_first_load_is_small_and_same_origin(playground: Playground) -> None:
    playground.sign_in()
    page = playground.page
    page.wait_for_load_state("networkidle")
    static = [r for r in playground.watch.requests if "/playground/" in r.url]
    sizes = {r.url: r.sizes()["responseBodySize"] for r in static}
    assert any(u.endswith("/playground/") for u in sizes) and any(u.endswith("marked.esm.js") for u in sizes)
    total = sum(sizes.values())
    assert 0 < total < FIRST_LOAD_BUDGET, sizes
    # Compressed on the wire: the vendored Markdown renderer alone is 52 KB uncompressed.
    [marked] = [n for u, n in sizes.items() if u.endswith("marked.esm.js")]
    assert marked < 25_000
    assert playground.watch.foreign == [] and playground.watch.csp_violations(page) == []
    # The key is kept for this tab only.
    assert page.evaluate("sessionStorage.getItem('playground.key')") == playground.key
    assert page.evaluate("localStorage.length") == 0
