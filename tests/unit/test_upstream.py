"""What the model client sends each kind of server and how it reads what comes back (pure parts of worker/model.py):
tool_choice as OpenAI means it, the request per server, tool-call deltas however they are chunked, usage estimated
when missing, and upstream errors in one readable line."""

import http.client
import json
from typing import Any

import pytest

from shared.backends import Route
from worker.model_types import ModelError, ModelRequest
from worker.run_request import tool_choice
from worker.upstream_errors import classify, detail, http_error, status_error, stream_error
from worker.upstream_request import IMAGE_NOTE, ForcedCall, prepare
from worker.upstream_stream import AnswerReader, Text, ToolDelta

WEATHER = {"type": "function", "function": {"name": "getCurrentWeather", "parameters": {"type": "object"}}}
CLOCK = {"type": "function", "function": {"name": "time", "parameters": {"type": "object"}}}
NAMED = {"type": "function", "function": {"name": "getCurrentWeather"}}


def route(server: str = "generic", **kw: Any) -> Route:
    return Route(name="m", base_url="http://x/v1", api_key="k", upstream="up", context_window=4096, server=server,
                 **kw)


def req(**kw: Any) -> ModelRequest:
    return ModelRequest(model="m", messages=[{"role": "user", "content": "hi"}], **kw)


# ---- tool_choice: the run's setting for one model turn -------------------------------------------------------
@pytest.mark.parametrize(("choice", "first", "after_a_tool_round"), [
    (None, "auto", "auto"),
    ("auto", "auto", "auto"),
    ("none", "none", "none"),
    ("required", "required", "auto"),
    ({"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}, "auto"),
    ({"type": "code_interpreter"}, {"type": "function", "function": {"name": "code_interpreter"}}, "auto"),
    ({"type": "file_search"}, {"type": "function", "function": {"name": "file_search"}}, "auto"),
])
def test_a_forced_tool_is_forced_until_it_has_been_called(choice: Any, first: Any, after_a_tool_round: Any) -> None:
    assert tool_choice(choice, answered=False) == first
    assert tool_choice(choice, answered=True) == after_a_tool_round


# ---- the request each kind of server gets ----------------------------------------------------------------------
def test_a_named_choice_where_the_server_forces_it() -> None:
    for server in ("openai", "vllm", "llama-cpp-python"):  # these force it themselves
        p = prepare(req(tools=[CLOCK, WEATHER], tool_choice=NAMED), route(server))
        assert p.kwargs["tools"] == [CLOCK, WEATHER] and p.kwargs["tool_choice"] == NAMED and p.forced is None
    for server in ("openai", "vllm"):
        assert prepare(req(tools=[CLOCK, WEATHER], tool_choice="required"), route(server)).kwargs["tool_choice"] \
            == "required"
    with pytest.raises(ModelError, match="'nope', which the run does not offer") as err:
        prepare(req(tools=[CLOCK], tool_choice={"type": "function", "function": {"name": "nope"}}), route())
    assert err.value.code == "invalid_prompt" and not err.value.transient


def test_a_forced_call_as_schema_constrained_json_where_the_server_would_not_force_it() -> None:
    """llama-server ignores a named choice and lets the model write text before a "required" call; Ollama
    ignores tool_choice; llama-cpp-python refuses "required"; an unknown server is given what works everywhere."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "weather?"}]
    for server in ("ollama", "generic", "llama-cpp-python"):
        assert prepare(req(tools=[CLOCK, WEATHER], tool_choice="required"), route(server)).forced is not None
    for server in ("ollama", "generic"):
        assert prepare(req(tools=[CLOCK, WEATHER], tool_choice=NAMED), route(server)).forced is not None
    p = prepare(ModelRequest(model="m", messages=messages, tools=[CLOCK, WEATHER], tool_choice=NAMED,
                             max_tokens=300), route("llama.cpp"))
    assert "tools" not in p.kwargs and "tool_choice" not in p.kwargs and p.kwargs["stream"]
    assert p.kwargs["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "tool_call", "schema": WEATHER["function"]["parameters"]}}
    assert p.forced is not None and (p.forced.names, p.forced.wrapped) == (["getCurrentWeather"], False)
    assert p.kwargs["messages"][0]["content"].startswith("Be brief.\n\nCall the function `getCurrentWeather`")
    assert p.kwargs["messages"][1:] == messages[1:] and p.kwargs["max_tokens"] == 300
    # "required" among several tools: one of them, by name.
    p = prepare(req(tools=[CLOCK, WEATHER], tool_choice="required"), route("llama.cpp"))
    assert p.forced is not None and p.forced.wrapped and p.forced.names == ["time", "getCurrentWeather"]
    [_, weather] = p.kwargs["response_format"]["json_schema"]["schema"]["anyOf"]
    assert weather["properties"] == {"name": {"const": "getCurrentWeather"},
                                     "arguments": WEATHER["function"]["parameters"]}
    assert p.kwargs["messages"][0]["role"] == "system" and "one of these functions" in p.kwargs["messages"][0][
        "content"]
    # Once the forced call is answered the choice is "auto": tools as usual.
    assert prepare(req(tools=[CLOCK, WEATHER], tool_choice="auto"), route("llama.cpp")).kwargs["tools"]


def test_the_token_limit_goes_in_the_field_the_server_reads() -> None:
    assert prepare(req(max_tokens=50), route("openai")).kwargs["max_completion_tokens"] == 50
    assert "max_tokens" not in prepare(req(max_tokens=50), route("openai")).kwargs  # OpenAI refuses both at once
    for server in ("llama.cpp", "llama-cpp-python", "ollama", "vllm", "generic"):
        kw = prepare(req(max_tokens=50), route(server)).kwargs
        assert kw["max_tokens"] == 50 and "max_completion_tokens" not in kw
    assert "max_tokens" not in prepare(req(), route()).kwargs


def test_streaming_and_usage_requested_except_where_the_server_cannot() -> None:
    kw = prepare(req(tools=[WEATHER], tool_choice="auto"), route()).kwargs
    assert kw["stream"] and kw["stream_options"] == {"include_usage": True} and kw["tool_choice"] == "auto"
    # llama-cpp-python gives a model choosing words an empty message when tools are offered with auto: that turn
    # is not streamed, and is asked again without tools if it comes back empty.
    p = prepare(req(tools=[WEATHER], tool_choice="auto", max_tokens=300), route("llama-cpp-python"))
    assert not p.kwargs["stream"] and "stream_options" not in p.kwargs and p.if_empty is not None
    again = p.if_empty.kwargs
    assert "tools" not in again and "tool_choice" not in again and again["stream"] and again["max_tokens"] == 300
    assert again["messages"] == p.kwargs["messages"]
    assert prepare(req(tools=[WEATHER], tool_choice=NAMED), route("llama-cpp-python")).kwargs["stream"]
    assert prepare(req(), route("llama-cpp-python")).kwargs["stream"]
    # Tools always carry an explicit choice (llama-cpp-python ignores tools without one); no tools, no choice.
    assert prepare(req(tools=[WEATHER]), route()).kwargs["tool_choice"] == "auto"
    assert "tool_choice" not in prepare(req(), route()).kwargs


def test_capabilities() -> None:
    # A model without tools is not offered any, and cannot be forced to call one.
    assert "tools" not in prepare(req(tools=[WEATHER], tool_choice="auto"), route(tools=False)).kwargs
    with pytest.raises(ModelError, match="configured without tools"):
        prepare(req(tools=[WEATHER], tool_choice="required"), route(tools=False))
    # A text-only model reads a note where an image was.
    parts = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "http://i"}}]
    messages = [{"role": "user", "content": parts}]
    sent = prepare(ModelRequest(model="m", messages=messages), route(vision=False)).kwargs["messages"]
    assert sent == [{"role": "user", "content": f"what is this?\n{IMAGE_NOTE}"}]
    assert messages[0]["content"] is parts  # the caller's messages are left alone
    assert prepare(ModelRequest(model="m", messages=messages), route()).kwargs["messages"][0]["content"] == parts


# ---- reading answers ---------------------------------------------------------------------------------------------
def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def call_delta(index: int | None = None, id: str | None = None, name: str | None = None,
               arguments: str | None = None) -> dict[str, Any]:
    tc: dict[str, Any] = {"function": {}}
    if index is not None:
        tc["index"] = index
    if id is not None:
        tc["id"], tc["type"] = id, "function"
    if name is not None:
        tc["function"]["name"] = name
    if arguments is not None:
        tc["function"]["arguments"] = arguments
    return chunk({"tool_calls": [tc]})


ARGS = '{"location": "Paris, France", "unit": "celsius"}'


def read(chunks: list[dict[str, Any]], names: tuple[str, ...] = ("getCurrentWeather",)) -> tuple[Any, list[Any]]:
    reader = AnswerReader(list(names))
    deltas = [d for c in chunks for d in reader.chunk(c)]
    return reader.finish([{"role": "user", "content": "weather?"}], []), deltas


def pieces(args: str, size: int) -> list[str]:
    return [args[i:i + size] for i in range(0, len(args), size)]


def test_openai_and_llama_server_chunking() -> None:
    chunks = [chunk({"role": "assistant", "content": None}),
              call_delta(0, "call_1", "getCurrentWeather", "{"),
              *(call_delta(0, arguments=p) for p in pieces(ARGS[1:], 5)),
              chunk({}, "tool_calls")]
    result, deltas = read(chunks)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("call_1", "getCurrentWeather", ARGS)]
    assert "".join(d.piece for d in deltas) == ARGS and result.finish_reason == "tool_calls"


def test_llama_cpp_python_repeats_id_and_name_in_every_delta() -> None:
    chunks = [call_delta(0, "abc", "getCurrentWeather", ""),
              *(call_delta(0, "abc", "getCurrentWeather", p) for p in pieces(ARGS, 3)),
              call_delta(0, "abc", "getCurrentWeather", ""),  # a final empty piece
              chunk({}, "tool_calls")]
    result, deltas = read(chunks)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("abc", "getCurrentWeather", ARGS)]
    # Clients are told each non-empty piece once; the first announces the call.
    assert all(isinstance(d, ToolDelta) and d.piece for d in deltas)
    assert "".join(d.piece for d in deltas) == ARGS


def test_names_split_in_pieces_and_repeated_without_ids() -> None:
    result, _ = read([call_delta(0, "c1", "getCurrent"), call_delta(0, name="Weather", arguments="{}")])
    assert result.tool_calls[0].name == "getCurrentWeather"
    # Repeated whole names without an id are recognised by the tools offered.
    result, _ = read([call_delta(0, "c1", "getCurrentWeather", "{"), call_delta(0, name="getCurrentWeather",
                                                                                arguments="}")])
    assert (result.tool_calls[0].name, result.tool_calls[0].arguments) == ("getCurrentWeather", "{}")


def test_parallel_calls_by_index_or_by_id() -> None:
    chunks = [call_delta(0, "a", "getCurrentWeather", '{"location": "Paris"}'),
              call_delta(1, "b", "getCurrentWeather", '{"location": "Rome"'), call_delta(1, arguments="}")]
    result, _ = read(chunks)
    assert [(c.id, c.arguments) for c in result.tool_calls] == [("a", '{"location": "Paris"}'),
                                                                 ("b", '{"location": "Rome"}')]
    # Every call at index 0 (or none), each whole with its own id: still two calls.
    chunks = [call_delta(0, "a", "getCurrentWeather", '{"location": "Paris"}'),
              call_delta(0, "b", "getCurrentWeather", '{"location": "Rome"}')]
    result, _ = read(chunks)
    assert [c.id for c in result.tool_calls] == ["a", "b"]
    result, _ = read([call_delta(id="a", name="getCurrentWeather", arguments="{}")])
    assert [c.id for c in result.tool_calls] == ["a"]


def test_missing_ids_and_arguments_legacy_function_call() -> None:
    result, _ = read([chunk({"function_call": {"name": "getCurrentWeather", "arguments": ""}})])
    call = result.tool_calls[0]
    assert call.id.startswith("call_") and call.name == "getCurrentWeather" and call.arguments == "{}"


def test_usage_reported_or_estimated() -> None:
    reader = AnswerReader([])
    reader.chunk(chunk({"content": "Hello there"}, "stop"))
    reader.chunk({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
    result = reader.finish([{"role": "user", "content": "hi"}], [])
    assert (result.prompt_tokens, result.completion_tokens, result.usage_estimated) == (12, 3, False)
    for usage in (None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}):
        reader = AnswerReader([])
        reader.chunk(chunk({"content": "Hello there, how can I help you today?"}, "stop"))
        if usage:
            reader.chunk({"choices": [], "usage": usage})
        result = reader.finish([{"role": "user", "content": "hi " * 100}], [WEATHER])
        assert result.usage_estimated and result.prompt_tokens > 75 and result.completion_tokens >= 9


def test_a_whole_completion_reads_like_its_stream() -> None:
    reader = AnswerReader(["getCurrentWeather"])
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me check.",
        "tool_calls": [{"id": "x", "type": "function", "function": {"name": "getCurrentWeather", "arguments": ARGS}}],
        "function_call": {"name": "getCurrentWeather", "arguments": ARGS}}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    deltas = reader.completion(body)
    result = reader.finish([], [])
    assert [type(d) for d in deltas] == [Text, ToolDelta]
    assert result.text == "Let me check." and len(result.tool_calls) == 1 and result.tool_calls[0].arguments == ARGS
    assert (result.prompt_tokens, result.completion_tokens) == (5, 7)


def test_a_forced_call_written_as_json_becomes_the_call() -> None:
    reader = AnswerReader(["getCurrentWeather"], ForcedCall(["getCurrentWeather"], wrapped=False))
    deltas = [d for p in pieces(ARGS, 7) for d in reader.chunk(chunk({"content": p}))]
    reader.chunk(chunk({}, "stop"))
    result = reader.finish([], [])
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("getCurrentWeather", ARGS)]
    # Streamed as the call's pieces, the first announcing it.
    assert all(isinstance(d, ToolDelta) and d.index == 0 for d in deltas) and "".join(
        d.piece for d in deltas) == ARGS
    # Wrapped: {"name", "arguments"}, known at the end; text that is not a call stays a reply.
    reader = AnswerReader(["time", "getCurrentWeather"], ForcedCall(["time", "getCurrentWeather"], wrapped=True))
    assert reader.chunk(chunk({"content": '{"name": "getCurrentWeather", "arguments": ' + ARGS + "}"}, "stop")) == []
    [call] = reader.finish([], []).tool_calls
    assert (call.name, json.loads(call.arguments)) == ("getCurrentWeather", json.loads(ARGS))
    # A server that ignored the schema and answered in words: a reply, not a broken call.
    for wrapped in (True, False):
        reader = AnswerReader(["time"], ForcedCall(["time"], wrapped=wrapped))
        reader.chunk(chunk({"content": "I cannot."}, "stop"))
        result = reader.finish([], [])
        assert (result.text, result.tool_calls, result.finish_reason) == ("I cannot.", [], "stop")
    # Cut short by the token limit: a call with what was written, as OpenAI's would be.
    reader = AnswerReader(["getCurrentWeather"], ForcedCall(["getCurrentWeather"], wrapped=False))
    reader.chunk(chunk({"content": '{"location": "Par'}, "length"))
    result = reader.finish([], [])
    assert result.finish_reason == "length" and result.tool_calls[0].arguments == '{"location": "Par'


# ---- errors ------------------------------------------------------------------------------------------------------
PYDANTIC = """3 validation errors for CreateChatCompletionRequest
messages.1.typed-dict.content
  Input should be a valid string [type=string_type, input_value=None, input_type=NoneType]
    For further information visit https://errors.pydantic.dev/2.11/v/string_type
messages.1.typed-dict.role
  Input should be 'user' [type=literal_error, input_value='assistant', input_type=str]
    For further information visit https://errors.pydantic.dev/2.11/v/literal_error"""


def test_a_500_that_is_a_validation_error_is_an_invalid_prompt() -> None:
    err = status_error(500, {"message": PYDANTIC, "type": "internal_server_error", "param": None, "code": None})
    assert err.code == "invalid_prompt" and not err.transient
    assert err.message == ("The model server refused the request: validation error: messages.1.typed-dict.content: "
                           "Input should be a valid string (and 2 more)")
    err = status_error(500, {"error": {"code": 500, "type": "server_error", "message":
                                       "image input is not supported - hint: if this is unexpected, you may need to "
                                       "provide the mmproj"}})
    assert err.code == "invalid_prompt" and "image input is not supported" in err.message
    # FastAPI's report in a 500 (llama-cpp-python): the telling error of a union's, not a role mismatch.
    from tests.model_server import PYDANTIC_NULL_CONTENT
    err = status_error(500, {"message": PYDANTIC_NULL_CONTENT, "type": "internal_server_error"})
    assert err.code == "invalid_prompt" and err.message == (
        "The model server refused the request: validation error: messages.1.content: Input should be a valid string "
        "(and 2 more)")
    # FastAPI's own 422 body.
    err = status_error(422, {"detail": [{"loc": ["body", "messages", 0, "role"], "msg": "field required"}]})
    assert err.message.endswith("validation error: messages.0.role: field required")


def test_other_errors() -> None:
    assert status_error(500, {"message": "CUDA out of memory"}).transient
    assert status_error(503, "Service Unavailable").code == "server_error"
    err = status_error(400, {"code": 400, "type": "exceed_context_size_error", "message": "exceeds",
                             "n_prompt_tokens": 5000, "n_ctx": 4096})
    assert err.code == "invalid_prompt" and "(5000 tokens) does not fit the model's context (4096 tokens)" in \
        err.message
    err = status_error(404, {"error": {"message": "model 'llama9' not found"}})
    assert not err.transient and "model 'llama9' not found" in err.message
    long = status_error(500, {"message": "boom " * 500}).message
    assert len(long) < 400 and "\n" not in long
    assert stream_error({"message": "the slot was released"}).transient
    assert detail(None) == "" and detail(json.loads('{"error": "plain"}')) == "plain"


def test_a_stream_broken_mid_answer_is_worth_another_try() -> None:
    """Reading a begun answer raises the socket's own errors: a dropped or silent connection is transient, as
    failures before the answer are; anything else unexpected is not."""
    for exc in (http.client.IncompleteRead(b""), TimeoutError("timed out"), ConnectionResetError("reset")):
        err = classify(exc)
        assert err.transient and err.code == "server_error", exc
    assert "stopped answering mid-stream" in classify(TimeoutError()).message
    assert not classify(ValueError("a bug")).transient


def test_a_429_is_a_rate_limit_worth_another_try() -> None:
    err = http_error(429, {"error": {"message": "Rate limit reached", "type": "requests"}})
    assert err.code == "rate_limit_exceeded" and err.transient and err.message.endswith("Rate limit reached")
    other = http_error(503, "Service Unavailable")
    assert (other.code, other.transient) == ("server_error", True)
    assert other.message == "The model failed (503): Service Unavailable"
