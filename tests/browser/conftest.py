"""The playground in a real browser: Debian's chromium driven by Playwright for Python, against the private stack
(real API, workers, sandboxes) with the scripted model. Playwright cannot download its own browsers here, so it
launches the system's (`make browser` installs it when missing)."""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, sync_playwright

from tests.stack import Stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What this machine needs: no sandbox (root, containers), no GPU, and nothing the browser would fetch by itself.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # runs on a loaded 2-core machine: generous, and still a failure when nothing comes
# PLAYGROUND_SCREENSHOTS=docs/playground saves the main screens there (how the README's pictures are made).
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@dataclass
class Watch:
    """What the page did that a test may want to refuse: script errors, requests to other origins, CSP
    violations (the sanitizer should leave nothing for the policy to block)."""
    origin: str
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page: bugs
    console: list[str] = field(default_factory=list)  # console errors (a refused request logs one too)
    foreign: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request)
        url = urlsplit(request.url)
        if url.scheme not in ("blob", "data") and f"{url.scheme}://{url.netloc}" != self.origin:
            self.foreign.append(request.url)

    def csp_violations(self, page: Page) -> list[str]:
        return list(page.evaluate("window.__cspViolations || []"))


@dataclass
class Playground:
    page: Page
    watch: Watch
    key: str
    client: openai.OpenAI  # the same project through the SDK, to check what the page did
    url: str

    def sign_in(self, shape: str = "v2") -> None:
        self.page.goto(self.url)
        self.page.get_by_label("API key").fill(self.key)
        self.page.get_by_label("API shape").select_option(shape)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Assistants", exact=True).wait_for()

    def tab(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Sections").get_by_role("button", name=name).click()

    def shot(self, name: str) -> None:
        if SHOTS:
            (ROOT / SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(ROOT / SHOTS / f"{name}.png"))


@pytest.fixture
def playground(browser: Browser, stack: Stack) -> Iterator[Playground]:
    """A fresh browser context signed out, and a new project (its lists hold only what the test made)."""
    key = stack.new_key(f"browser-{uuid.uuid4().hex[:8]}")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    # Collects CSP violations from the first moment (added through the DevTools protocol, not subject to CSP).
    context.add_init_script("window.__cspViolations = []; document.addEventListener('securitypolicyviolation', (e) =>"
                            " window.__cspViolations.push(`${e.violatedDirective} ${e.sourceFile}:${e.lineNumber}`));")
    page = context.new_page()
    watch = Watch(origin=stack.root_url)
    page.on("request", watch.on_request)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", lambda m: watch.console.append(m.text) if m.type == "error" else None)
    yield Playground(page=page, watch=watch, key=key, client=openai.OpenAI(base_url=stack.base_url, api_key=key),
                     url=stack.root_url + "/playground/")
    context.close()
    assert watch.foreign == [], f"requests to other origins: {watch.foreign}"
    assert watch.errors == [], f"uncaught errors in the page: {watch.errors}"
