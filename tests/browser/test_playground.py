"""Using the playground as a person would, in chromium: sign in, build assistants, talk to them, watch runs
stream, answer function calls, cite files, cancel, and survive a dropped connection. The model is scripted;
everything else (API, workers, sandboxes, search) is real."""

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import Playground
from tests.model_server import ScriptedModel

REACTOR = ("# Zorblax station handbook\n\nThe Zorblax reactor is cooled by liquid helium-3 circulating through "
           "the inner mantle. Coolant pressure must stay between 40 and 45 bar.\n")


def word() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def code(src: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": src})}]}


def search(query: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": query})}]}


def log(page: Page) -> Locator:
    return page.get_by_role("log", name="Conversation")


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def new_assistant(pg: Playground, name: str, *, tools: tuple[str, ...] = ("Code interpreter",)) -> str:
    """Creates an assistant through the editor; returns its id (from the page's confirmation)."""
    page = pg.page
    pg.tab("Assistants")
    page.get_by_role("button", name="New assistant").click()
    editor = page.locator("form.editor")
    editor.get_by_label("Name", exact=True).fill(name)
    editor.get_by_label("Instructions").fill("You are a helpful assistant.")
    for tool in tools:
        editor.get_by_label(tool, exact=True).check()
    editor.get_by_role("button", name="Save", exact=True).click()
    saved = page.get_by_role("status").filter(has_text="Saved")
    expect(saved).to_contain_text(name)
    found = re.search(r"\((asst_\w+)\)", saved.inner_text())
    assert found, saved.inner_text()
    return found.group(1)


def open_threads(pg: Playground, assistant_id: str) -> None:
    pg.tab("Threads")
    pg.page.get_by_role("button", name="New thread").click()
    pg.page.get_by_label("Assistant", exact=True).select_option(assistant_id)


def test_sign_in_refuses_a_wrong_key_with_the_apis_message(playground: Playground) -> None:
    page = playground.page
    page.goto(playground.url)
    page.get_by_label("API key").fill("sk-not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect API key provided")
    assert page.evaluate("sessionStorage.getItem('playground.key')") is None
    playground.shot("sign-in")
    playground.sign_in()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()


def test_code_interpreter_reply_streams_with_the_codes_output(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, word()
    sentence = "The solution is x equals one, as the code printed above, " + " ".join(["indeed"] * 12) + "."
    model.script(w, code("x = (14 - 11) / 3\nprint(f'x = {x}')"), {"text": sentence, "chunk_delay": 0.15})
    playground.sign_in()
    assistant_id = new_assistant(playground, "Math tutor")
    assert playground.client.beta.assistants.retrieve(assistant_id).tools[0].type == "code_interpreter"
    open_threads(playground, assistant_id)
    send(page, f"Solve 3x + 11 = 14 {w}")

    conversation = log(page)
    expect(conversation.get_by_role("article", name="You")).to_contain_text("Solve 3x + 11 = 14")
    code_call = conversation.get_by_role("region", name="Code interpreter")
    expect(code_call).to_contain_text("x = (14 - 11) / 3")
    expect(code_call.locator("pre.logs")).to_have_text("x = 1.0")
    # The reply is shown as its tokens arrive: several growing prefixes of it are seen before the whole.
    reply = conversation.get_by_role("article", name="Assistant")
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = reply.inner_text() if reply.count() else ""
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        if sentence in text:
            break
        time.sleep(0.05)
    partial = [t for t in seen if sentence not in t and "The solution" in t]
    assert len(partial) >= 3, seen
    expect(reply).to_contain_text(sentence)
    panel = page.get_by_role("complementary", name="Run details")
    expect(panel.locator(".status").first).to_have_text("completed")
    expect(panel).to_contain_text("Tool calls: code_interpreter")
    expect(panel).to_contain_text("tokens")
    playground.shot("thread-code-interpreter")
    # The thread is listed (newest first) under the first message's words.
    expect(page.get_by_role("button", name=f"Solve 3x + 11 = 14 {w}").first).to_be_visible()


def test_a_figure_and_a_file_the_code_made(playground: Playground, model: ScriptedModel, tmp_path: Path) -> None:
    page, w = playground.page, word()
    model.script(w, code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\n"
                         "open('/mnt/data/squares.csv', 'w').write('n,sq\\n1,1\\n2,4\\n3,9\\n')"),
                 {"text": "Here is the plot and [the table](sandbox:/mnt/data/squares.csv)."})
    playground.sign_in()
    assistant_id = new_assistant(playground, "Plotter")
    open_threads(playground, assistant_id)
    # A message with an attachment uploaded from the page.
    data = tmp_path / "numbers.csv"
    data.write_text("n\n1\n2\n3\n")
    page.get_by_label("Attach files").set_input_files(str(data))
    expect(page.get_by_role("list", name="Files to attach")).to_contain_text("file-")
    send(page, f"plot squares {w}")
    conversation = log(page)
    expect(conversation.get_by_role("article", name="You").get_by_role("list", name="Attached files")) \
        .to_contain_text("numbers.csv")
    figure = conversation.get_by_role("img", name="An image made by the assistant")
    expect(figure).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figure.element_handle())
    assert figure.get_attribute("src").startswith("blob:")
    link = conversation.get_by_role("link", name="the table")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "squares.csv"
    assert Path(download.value.path()).read_text() == "n,sq\n1,1\n2,4\n3,9\n"
    thread_id = page.locator(".conversation-head .meta").inner_text()
    [msg] = [m for m in playground.client.beta.threads.messages.list(thread_id).data if m.role == "user"]
    assert msg.attachments[0].tools[0].type == "code_interpreter"


def test_function_schema_is_validated_and_outputs_are_submitted(playground: Playground,
                                                                model: ScriptedModel) -> None:
    page, w = playground.page, word()
    model.script(w, {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
                 {"text": "It is 22 degrees and sunny in Paris."})
    playground.sign_in()
    page.get_by_label("Name", exact=True).fill("Weather")
    page.get_by_role("button", name="Add function").click()
    editor = page.get_by_label("Function 1 (JSON: name, description, parameters)")
    bad = {"name": "get_weather", "parameters": {"type": "objekt", "properties": {"city": {"type": "string"}}}}
    editor.fill(json.dumps(bad, indent=2))
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".function ul.error")).to_contain_text("parameters.type")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Function 1 is not valid")).to_be_visible()
    expect(editor).to_be_focused()
    playground.shot("assistant-editor")
    assert playground.client.beta.assistants.list().data == []
    editor.fill("{not json")
    expect(page.locator(".function ul.error")).to_contain_text("Not valid JSON")
    good = {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    editor.fill(json.dumps(good, indent=2))
    expect(editor).to_have_attribute("aria-invalid", "false")
    expect(page.get_by_role("alert").filter(has_text="Function 1 is not valid")).to_have_count(0)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    [saved] = playground.client.beta.assistants.list().data
    assert saved.tools[0].function.parameters == good["parameters"]

    open_threads(playground, saved.id)
    send(page, f"Weather in Paris? {w}")
    form = page.get_by_role("form", name="The run waits for a function's output")
    expect(form).to_contain_text('{"city": "Paris"}')
    expect(page.get_by_role("complementary", name="Run details").locator(".status").first) \
        .to_have_text("requires_action")
    playground.shot("function-call")
    form.get_by_label("Output of get_weather").fill('{"temperature": 22, "sky": "sunny"}')
    form.get_by_role("button", name="Submit outputs").click()
    expect(log(page).get_by_role("article", name="Assistant")).to_contain_text("22 degrees and sunny")
    expect(log(page).get_by_role("region", name="Function call get_weather")).to_contain_text('"temperature": 22')
    told = model.requests_for(w)[-1]["messages"][-1]
    assert told["role"] == "tool" and json.loads(told["content"]) == {"temperature": 22, "sky": "sunny"}


def test_file_search_answer_cites_the_uploaded_file(playground: Playground, model: ScriptedModel,
                                                    tmp_path: Path) -> None:
    page, w = playground.page, word()
    model.script(w, search("what keeps the reactor cold"), {"text": "It is cooled by liquid helium-3{cite:0}."})
    handbook = tmp_path / "reactor.md"
    handbook.write_text(REACTOR)
    playground.sign_in()
    page.get_by_label("Name", exact=True).fill("Librarian")
    page.get_by_label("File search", exact=True).check()
    page.get_by_label("Upload files into a new vector store").set_input_files(str(handbook))
    stores = page.get_by_role("group", name="File search: vector stores")
    expect(stores).to_contain_text("1 of 1 files ready", timeout=120_000)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    [saved] = playground.client.beta.assistants.list().data
    assert len(saved.tool_resources.file_search.vector_store_ids) == 1

    open_threads(playground, saved.id)
    send(page, f"How is the reactor cooled? {w}")
    reply = log(page).get_by_role("article", name="Assistant")
    expect(reply).to_contain_text("It is cooled by liquid helium-3")
    notes = reply.get_by_role("list", name="Sources")
    expect(notes).to_contain_text("helium-3 circulating")  # the quoted excerpt
    expect(notes).to_contain_text("reactor.md")
    ref = reply.get_by_role("link", name="Source 1")
    assert "【" not in reply.locator(".markdown").inner_text()  # the marker became a footnote reference
    ref.click()
    assert page.evaluate("location.hash").startswith("#note-")
    search_call = log(page).get_by_role("region", name="File search")
    expect(search_call).to_contain_text("reactor.md")
    playground.shot("file-search-citation")


def test_cancel_a_run_mid_stream(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, word()
    model.script(w, {"text": " ".join(["slowly"] * 200), "chunk_delay": 0.2})
    playground.sign_in()
    assistant_id = new_assistant(playground, "Slow talker", tools=())
    open_threads(playground, assistant_id)
    send(page, f"talk slowly {w}")
    expect(log(page).get_by_role("article", name="Assistant")).to_contain_text("slowly slowly")
    # The API refuses a message while the run is active: its message is shown in place, the text is kept.
    box = page.get_by_role("textbox", name="Message", exact=True)
    box.fill("one more thing")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Can't add messages to")).to_contain_text("is active.")
    expect(box).to_have_value("one more thing")
    page.get_by_role("button", name="Cancel run").click()
    expect(log(page)).to_contain_text("The run was cancelled.")
    expect(page.get_by_role("complementary", name="Run details").locator(".status").first).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    thread_id = page.locator(".conversation-head .meta").inner_text()
    [run] = playground.client.beta.threads.runs.list(thread_id).data
    assert run.status == "cancelled"


def test_a_dropped_stream_resumes_from_the_last_event(playground: Playground, model: ScriptedModel) -> None:
    """The run's first response is cut in the middle of an event; the page resumes with Last-Event-ID and shows
    the whole reply exactly once."""
    page, w = playground.page, word()
    sentence = " ".join(f"token{i}" for i in range(30))
    # Tokens slower than the 0.1 s over which text deltas are coalesced: a delta each, so the cut falls mid-answer.
    model.script(w, {"text": sentence, "chunk_delay": 0.15})
    resumed: list[dict[str, str]] = []

    def cut(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        full = route.fetch()  # the whole stream (the run is short), then only its first part is delivered
        body = full.body()
        at = body.index(b"event: thread.message.delta")
        at = body.index(b"event: thread.message.delta", at + 1000)  # some deltas in, then mid-event
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body[: at + 40])

    page.route("**/v1/threads/*/runs", cut)
    page.on("request", lambda r: resumed.append(r.headers) if r.url.endswith("/events") else None)
    playground.sign_in()
    assistant_id = new_assistant(playground, "Resumer", tools=())
    open_threads(playground, assistant_id)
    send(page, f"say many tokens {w}")
    reply = log(page).get_by_role("article", name="Assistant")
    expect(reply).to_contain_text(sentence, timeout=30_000)  # the cut response comes after the whole run (~5 s)
    assert reply.locator(".markdown").inner_text().strip() == sentence
    assert resumed and resumed[0]["last-event-id"]
    expect(page.get_by_role("complementary", name="Run details").locator(".status").first).to_have_text("completed")


def test_threads_are_listed_newest_first_opened_and_deleted(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, word()
    client = playground.client
    model.script(w, code("print('from history')"), {"text": "Stored answer."})
    assistant = client.beta.assistants.create(model="gpt-4o", name="Historian", tools=[{"type": "code_interpreter"}])
    old = client.beta.threads.create(metadata={"title": "Older thread"},
                                     messages=[{"role": "user", "content": f"first question {w}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=old.id, assistant_id=assistant.id,
                                                   poll_interval_ms=200, timeout=120)
    assert run.status == "completed", run.last_error
    new = client.beta.threads.create(metadata={"title": "Newer thread"})
    playground.sign_in()
    playground.tab("Threads")
    threads = page.get_by_role("region", name="Threads").get_by_role("list").locator("button.item")
    expect(threads).to_have_count(2)
    expect(threads.nth(0)).to_contain_text("Newer thread")
    expect(threads.nth(1)).to_contain_text("Older thread")

    threads.nth(1).click()
    conversation = log(page)
    expect(conversation.get_by_role("article", name="You")).to_contain_text("first question")
    expect(conversation.get_by_role("region", name="Code interpreter")).to_contain_text("from history")
    expect(conversation.get_by_role("article", name="Assistant")).to_contain_text("Stored answer.")
    expect(page.get_by_role("complementary", name="Run details")).to_contain_text(run.id)

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete thread Newer thread ({new.id})").click()
    expect(threads).to_have_count(1)
    with pytest.raises(Exception, match="No thread found"):
        client.beta.threads.retrieve(new.id)


def test_v1_shape_per_page(playground: Playground, model: ScriptedModel) -> None:
    page, w = playground.page, word()
    model.script(w, {"text": "Answered in the v1 shape."})
    playground.sign_in(shape="v1")
    expect(page.get_by_label("Retrieval", exact=True)).to_be_visible()
    assistant_id = new_assistant(playground, "Old timer", tools=("Retrieval",))
    raw = playground.client.get(f"/assistants/{assistant_id}", cast_to=object,
                                options={"headers": {"OpenAI-Beta": "assistants=v1"}})
    assert raw["tools"] == [{"type": "retrieval"}] and raw["file_ids"] == []  # type: ignore[index]
    open_threads(playground, assistant_id)
    send(page, f"hello {w}")
    expect(log(page).get_by_role("article", name="Assistant")).to_contain_text("Answered in the v1 shape.")
    # Another tab of the same browser keeps its own choice (session storage is per tab).
    other = page.context.new_page()
    other.goto(playground.url)
    assert other.evaluate("sessionStorage.getItem('playground.shape')") is None
    other.close()
