"""The playground's static files, offline: vendored libraries as pinned (with licenses), every import resolvable and
preloaded, the first load under budget, no foreign URL, a strict Content-Security-Policy, gzip negotiation."""

import re

import pytest

from api.playground import vendor
from api.playground.assets import CONTENT_SECURITY_POLICY, accepts_gzip, assets

FIRST_LOAD_BUDGET = 300 * 1024
IMPORT = re.compile(r"""(?:^|[;\s}])(?:import|export)\s[^;'"]*?from\s*["']([^"']+)["']"""  # static
                    r"""|import\(\s*["']([^"']+)["']\s*\)""", re.M)  # dynamic


def resolve(base: str, ref: str) -> str:
    parts = base.split("/")[:-1]
    for piece in ref.split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def imports(path: str) -> tuple[set[str], set[str]]:
    """A module's static imports and its dynamic import()s, as asset paths."""
    text = assets()[path].body.decode()
    static, lazy = set(), set()
    for m in IMPORT.finditer(text):
        (static if m.group(1) else lazy).add(resolve(path, m.group(1) or m.group(2)))
    return static, lazy


def graph(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += imports(path)[0]
    return seen


def index_refs() -> dict[str, str]:
    html = assets()["index.html"].body.decode()
    tag = r'<(link rel="\w+"|script type="module")[^>]*(?:href|src)="([^"]+)"'
    return {m.group(2): m.group(1) for m in re.finditer(tag, html)}


def test_vendored_files_are_as_pinned_and_licensed() -> None:
    manifest = vendor.load_manifest()
    assert vendor.check(manifest) == []
    for pkg in manifest["packages"]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", pkg["version"]), pkg["name"]  # pinned, not a range
        assert pkg["integrity"].startswith("sha512-")
        dests = set(pkg["files"].values())
        assert any(d.endswith("/LICENSE") for d in dests) or "license_note" in pkg, pkg["name"]


def test_every_import_resolves_and_the_first_load_is_preloaded() -> None:
    refs = index_refs()
    assert all(path in assets() for path in refs), set(refs) - set(assets())
    first_load = graph("js/main.js")
    assert all(p in assets() for p in first_load), first_load - set(assets())
    preloaded = {p for p, kind in refs.items() if "modulepreload" in kind}
    assert first_load - {"js/main.js"} == preloaded
    lazy = {p for module in first_load for p in imports(module)[1]}
    assert lazy == {"js/schema.js"} and graph("js/schema.js") <= set(assets())


def test_first_load_is_under_budget_compressed() -> None:
    files = {"index.html", *index_refs(), *graph("js/main.js")}
    total = sum(len(a.gzipped or a.body) for p, a in assets().items() if p in files)
    assert total < FIRST_LOAD_BUDGET, total


def test_no_url_of_another_origin_in_our_files() -> None:
    own = [p for p in assets() if not p.startswith("vendor/")]
    for path in own:
        text = re.sub(r'xmlns="[^"]*"', "", assets()[path].body.decode())  # a namespace name is not a request
        assert not re.search(r"https?://", text), path


def test_the_policy_forbids_inline_and_foreign_code() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'" and "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True), ("gzip;q=0", False),
    ("identity", False), ("", False), ("deflate", False), ("gzip;q=bad", False),
])
def test_gzip_negotiation(header: str, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
