"""code_interpreter inside runs: the model writes Python, the thread's sandbox runs it, the model sees the
output. Real containers (Docker) behind the real run engine; the model is scripted."""

import io
import json
import os
import signal
import time
import uuid

import openai
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads.runs import ToolCall, ToolCallDelta

from tests.model_server import ScriptedModel
from tests.stack import Stack


def code(src: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": src})}]}


def test_math_tutor_runs_code(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code("x = (14 - 11) / 3\nprint(f'x = {x}')"), {"text": "The solution is x = 1."})
    assistant = client.beta.assistants.create(
        model="gpt-4-1106-preview", name="Math Tutor", tools=[{"type": "code_interpreter"}],
        instructions="You are a personal math tutor. Write and run code to answer math questions.")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"I need to solve the equation `3x + 11 = 14`. Can you help me? {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    [call] = steps[0].step_details.tool_calls
    assert call.type == "code_interpreter" and call.code_interpreter.input.startswith("x = (14 - 11) / 3")
    assert [(o.type, o.logs) for o in call.code_interpreter.outputs] == [("logs", "x = 1.0\n")]
    first, second = model.requests_for(word)
    assert any(t["function"]["name"] == "code_interpreter" for t in first["tools"])
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "x = 1.0\n"}
    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "The solution is x = 1."


def test_state_and_files_persist_across_runs_of_a_thread(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    data = client.files.create(file=("sales.csv", io.BytesIO(b"region,amount\nnorth,10\nsouth,32\n")),
                               purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"load it {word}"}])
    model.script(word, code("import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\ndf.amount.sum()"),
                 {"text": "Loaded."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    [call] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0] \
        .step_details.tool_calls
    assert call.code_interpreter.outputs[0].logs == "42\n"

    again = f"c{uuid.uuid4().hex[:10]}"
    client.beta.threads.messages.create(thread.id, role="user", content=f"and now? {again}")
    model.script(again, code("print(len(df), df.region.tolist())"), {"text": "Two regions."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    [call] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0] \
        .step_details.tool_calls
    assert call.code_interpreter.outputs[0].logs == "2 ['north', 'south']\n"  # the variable survived


def test_errors_reach_the_model_which_may_retry(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code("1 / 0"), code("print('fixed')"), {"text": "Done after a retry."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
    assert "ZeroDivisionError: division by zero" in steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
    assert "ZeroDivisionError" in model.requests_for(word)[1]["messages"][-1]["content"]


def test_a_plot_comes_back_as_an_image(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('y = x²')"),
                 {"text": "Here is the plot."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"plot squares {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    [call] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0] \
        .step_details.tool_calls
    [image] = [o for o in call.code_interpreter.outputs if o.type == "image"]
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert [c.type for c in reply.content] == ["image_file", "text"]
    assert reply.content[0].image_file.file_id == image.image.file_id
    f = client.files.retrieve(image.image.file_id)
    assert f.purpose == "assistants_output" and f.filename.endswith(".png")
    assert client.files.content(f.id).read()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "was shown to the user" in model.requests_for(word)[1]["messages"][-1]["content"]


def test_a_csv_shuffled_into_a_new_downloadable_file(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    rows = "".join(f"{i},{i * i}\n" for i in range(20))
    data = client.files.create(file=("numbers.csv", io.BytesIO(("n,square\n" + rows).encode())),
                               purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": f"shuffle it {word}",
        "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}]}])
    model.script(word, code("import pandas as pd\ndf = pd.read_csv('/mnt/data/numbers.csv')\n"
                            "df.sample(frac=1, random_state=1).to_csv('/mnt/data/shuffled.csv', index=False)"),
                 {"text": "Done: [download](sandbox:/mnt/data/shuffled.csv)"})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id).data[0]
    text = reply.content[0].text
    [note] = text.annotations
    assert note.type == "file_path" and note.text == "sandbox:/mnt/data/shuffled.csv"
    assert text.value[note.start_index:note.end_index] == "sandbox:/mnt/data/shuffled.csv"
    made = client.files.retrieve(note.file_path.file_id)
    assert made.filename == "shuffled.csv" and made.purpose == "assistants_output"
    shuffled = client.files.content(made.id).read().decode().splitlines()
    assert shuffled[0] == "n,square" and sorted(shuffled[1:]) == sorted(rows.splitlines())
    assert shuffled[1:] != rows.splitlines()  # really shuffled
    [call] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0] \
        .step_details.tool_calls
    assert "_files" not in call.model_dump()  # the engine's bookkeeping stays private
    assert "sandbox:/mnt/data/shuffled.csv" in model.requests_for(word)[1]["messages"][-1]["content"]


def test_code_worker_killed_mid_execution(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    """The code task is redelivered and runs again in the same session; the run finishes exactly once."""
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code("import time\ntime.sleep(3)\nprint('slept')"), {"text": "Finished."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 30
    while not client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # the code is running in the sandbox now
    children = stack.children("code-worker")
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert final.status == "completed", final.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "slept\n"
    assert [m.role for m in client.beta.threads.messages.list(thread.id).data] == ["assistant", "user"]


def test_code_streams_as_step_deltas_then_its_outputs(client: openai.OpenAI, model: ScriptedModel) -> None:
    """As OpenAI streamed it: the code as the model writes it (decoded, not the JSON around it), then the logs."""
    word = f"c{uuid.uuid4().hex[:10]}"
    src = 'name = "Zoë 😀"\nprint(f"hi {name}")\nprint("tab\\there")'
    model.script(word, {**code(src), "arg_chunk": 4}, {"text": "Greeted."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])

    seen: list[str] = []
    pieces: list[str] = []
    logs: list[str] = []

    class Handler(openai.AssistantEventHandler):
        def on_event(self, event: AssistantStreamEvent) -> None:
            seen.append(event.event)

        def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
            assert delta.type == "code_interpreter" and delta.code_interpreter is not None
            if delta.code_interpreter.input:
                pieces.append(delta.code_interpreter.input)
            logs.extend(o.logs or "" for o in delta.code_interpreter.outputs or [] if o.type == "logs")

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=Handler()) as stream:
        stream.until_done()
        steps = stream.get_final_run_steps()
    assert "".join(pieces) == src and len(pieces) > 5  # many pieces, in order, escapes and emoji decoded
    assert logs == ["hi Zoë 😀\ntab\there\n"]
    first_delta = seen.index("thread.run.step.delta")
    assert seen.index("thread.run.step.created") < first_delta
    assert seen.index("thread.run.step.completed") > len(seen) - 1 - seen[::-1].index("thread.run.step.delta")
    [call] = steps[0].step_details.tool_calls
    assert call.code_interpreter.input == src and call.code_interpreter.outputs[0].logs == logs[0]
    assert seen[-1] == "thread.run.completed"


def test_a_session_reset_reaches_the_model(client: openai.OpenAI, model: ScriptedModel) -> None:
    """Out of memory: the model is told what happened and that the session starts over; the next call runs in
    a fresh session (the earlier variables are gone, the assistant's files are back)."""
    word = f"c{uuid.uuid4().hex[:10]}"
    data = client.files.create(file=("keep.txt", io.BytesIO(b"still here")), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    model.script(word, code("x = 1\nprint('set')"),
                 code("xs = []\nwhile True:\n    xs.append(bytearray(50 << 20))"),
                 code("print('x' in dir(), open('/mnt/data/keep.txt').read())"), {"text": "Recovered."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=180)
    assert run.status == "completed", run.last_error
    requests = model.requests_for(word)
    told = requests[2]["messages"][-1]
    assert told["role"] == "tool" and "ran out of memory (limit 512 MB)" in told["content"]
    assert "session was restarted" in told["content"]
    assert requests[3]["messages"][-1]["content"] == "False still here\n"


def test_deleting_a_thread_ends_its_session(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code("secret = 42"), {"text": "Stored."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    name = f"sbx-thread-{thread.id}"
    assert name in _containers()
    client.beta.threads.delete(thread.id)
    deadline = time.monotonic() + 30
    while name in _containers():
        assert time.monotonic() < deadline, "the deleted thread's sandbox is still there"
        time.sleep(0.2)


def _containers() -> set[str]:
    import docker

    # sparse: no inspect per container, which races with other stacks removing theirs (NotFound).
    listed = docker.from_env().containers.list(all=True, sparse=True, filters={"label": "assistants.sandbox"})
    return {name.lstrip("/") for c in listed for name in c.attrs.get("Names", [])}
