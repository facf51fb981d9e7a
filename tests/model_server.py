"""A scripted, OpenAI-compatible Chat Completions server: the one stand-in the tests use, because no model is
reachable here. Everything between the SDK and this server is the real system.

Standard library only (the v1 suite's environment has no project packages). Tests script replies by a
substring of the last user message:

    model.script("weather", {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
                 {"text": "It is sunny."})

Reply forms: {"text": str}, {"tool_calls": [{"name", "arguments"}]}, {"error": status, "message": str},
{"finish_reason": "length", "text": str}; a text may hold {cite:N} (see _cite); any of them may add "delay"
(seconds before answering), "ttft" (seconds between the response's headers and its first token, as a real model
thinks), "chunk_delay" (seconds between streamed chunks), "stall" ([n, seconds]: a pause after the n-th token),
"arg_chunk" (characters per streamed piece of tool call arguments; default: two halves), "empty_first_piece" (open
each call with `arguments: ""` beside its id and name, as OpenAI's models do, the pieces following),
"interleave_calls" (stream parallel calls' pieces in turns rather than one call after the other). Unscripted
prompts get "You said: <last user message>".

Like a real model: `ScriptedModel(ttft=0.5, tokens_per_second=50, words=150)` answers every unscripted prompt
with `words` words, the first after `ttft` seconds, then at that rate (the benchmark's realistic model).
Every request body is kept, for assertions on what the model was sent. POST /v1/embeddings answers too (hashed
bags of words, EMBEDDING_DIM dimensions), for tests of a remote embedder. {"error": status, "body": …} answers
with that body as it is (a dict as JSON, a string as text).

By default the server answers as OpenAI does. `ScriptedModel(quirks=…)` replays what a real server was measured
doing instead (see QUIRKS), so that the engine's handling of it is tested without that server.
"""

import heapq
import itertools
import json
import re
import threading
import time
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMBEDDING_DIM = 64

# What real servers do differently from OpenAI (measured with SmolLM2 behind them; README "The model"):
QUIRKS: dict[str, set[str]] = {
    "llama-cpp-python": {
        "repeat_tool_header",  # every tool-call delta repeats id, type and name; the first arguments piece is ""
        "no_stream_usage",  # stream_options.include_usage is ignored: no usage in streams
        "refuse_null_content",  # an assistant message with tool_calls and content null (or no content): HTTP 500
        "refuse_developer",  # the `developer` role: HTTP 500
        "refuse_required",  # tool_choice "required": HTTP 500
        "tools_need_choice",  # tools without a tool_choice are ignored
        "auto_answers_empty",  # tools + tool_choice "auto": a model choosing words gets an empty message
        "legacy_function_call",  # a non-streamed tool call also comes as the legacy `function_call`
    },
    "llama-server": {
        "close_after_stream",  # says keep-alive, then drops the next request on that connection unanswered
        "ignore_named_choice",  # a named tool_choice is treated as auto (the model wrote text to the limit)
        "required_writes_text",  # "required" lets the model write text first (SmolLM2 then never called)
        "null_first_content",  # the first chunk is {role, content: null}
        "int_error_code",  # error bodies carry the HTTP status as `code`, and no `param`
    },
}
# The validation report llama-cpp-python's server sends as a 500's message for an assistant tool-call message with
# content null (as measured, shortened to three of its seven errors).
PYDANTIC_NULL_CONTENT = (
    "3 validation errors:\n"
    "  {'type': 'literal_error', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestSystemMessage', 'role'), "
    "'msg': \"Input should be 'system'\", 'input': 'assistant', 'ctx': {'expected': \"'system'\"}}\n"
    "  {'type': 'string_type', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestAssistantMessage', 'content'), "
    "'msg': 'Input should be a valid string', 'input': None}\n"
    "  {'type': 'missing', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestToolMessage', 'tool_call_id'), "
    "'msg': 'Field required', 'input': {'role': 'assistant', 'content': None}}\n\n"
    "  File \"llama_cpp/server/app.py\", line 376, in create_chat_completion\n    POST /v1/chat/completions")


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-compatible /embeddings answer: hashed bags of words (deterministic, cheap). Texts sharing words
    get similar vectors, which is all a test of the embeddings plumbing needs."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, t in enumerate(texts):
        v = [0.0] * EMBEDDING_DIM
        for word in re.findall(r"\w+", t.lower()):
            v[zlib.crc32(word.encode()) % EMBEDDING_DIM] += 1.0
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        data.append({"object": "embedding", "index": i, "embedding": [x / norm for x in v]})
    return {"object": "list", "data": data, "model": body.get("model", "scripted"),
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}


def _cite(reply: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """`{cite:N}` in a scripted text becomes the N-th citation marker (【…†…】) of the last tool output, the way a
    model copies the markers file_search gave it; `{quote:N}` the excerpt under that marker."""
    if "{cite:" not in reply.get("text", "") and "{quote:" not in reply.get("text", ""):
        return reply
    tool = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "tool"), "")
    parts = re.split(r"(【[^】]*】)\n", tool)
    found = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
    text = reply["text"]
    for n, (marker, excerpt) in enumerate(found):
        text = text.replace(f"{{cite:{n}}}", marker).replace(f"{{quote:{n}}}", excerpt)
    return {**reply, "text": text}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _quirk_reply(quirks: set[str], body: dict[str, Any]) -> dict[str, Any] | None:
    """The answer a quirky server gives whatever the script says, or None."""
    messages = body.get("messages", [])
    if "refuse_null_content" in quirks and any(
            m.get("role") == "assistant" and m.get("tool_calls") and m.get("content") is None for m in messages):
        return {"error": 500, "body": {"error": {"message": PYDANTIC_NULL_CONTENT, "type": "internal_server_error",
                                                 "param": None, "code": None}}}
    if "refuse_developer" in quirks and any(m.get("role") == "developer" for m in messages):
        return {"error": 500, "body": {"error": {"message": "System role not supported",
                                                 "type": "internal_server_error", "param": None, "code": None}}}
    if "refuse_required" in quirks and body.get("tool_choice") == "required":
        return {"error": 500, "body": {"error": {"message": "Invalid tool_choice: required",
                                                 "type": "internal_server_error", "param": None, "code": None}}}
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of runs call at once


class ScriptedModel:
    def __init__(self, host: str = "127.0.0.1", quirks: str | None = None, *, port: int = 0, ttft: float = 0.0,
                 tokens_per_second: float = 0.0, words: int = 0) -> None:
        self.quirks = QUIRKS[quirks] if quirks else set()
        self.default_pace = {"ttft": ttft, "chunk_delay": 1 / tokens_per_second if tokens_per_second else 0.0}
        self.default_words = words
        self.lock = threading.Lock()
        self.rules: list[tuple[str, list[dict[str, Any]]]] = []
        self.requests: list[dict[str, Any]] = []
        # Chat completions being answered right now, and the most there were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        # Requests dropped unanswered on a connection kept after a stream ("close_after_stream").
        self.dropped = 0
        # Streams the client hung up on before their end: (last user message, time.monotonic()).
        self.aborted: list[tuple[str, float]] = []
        self.server = _Server((host, port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "ScriptedModel":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def script(self, match: str, *replies: dict[str, Any]) -> None:
        with self.lock:
            self.rules.append((match, list(replies)))

    def reset_peak(self) -> None:
        with self.lock:
            self.max_in_flight = self.in_flight

    def requests_for(self, match: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if match in _last_user_text(r.get("messages", []))]

    def image_parts(self, match: str) -> list[dict[str, Any]]:
        """The image parts the model received in the user messages of the requests matching `match`."""
        return [part for r in self.requests_for(match) for m in r.get("messages", [])
                if m.get("role") == "user" and isinstance(m.get("content"), list)
                for part in m["content"] if isinstance(part, dict) and part.get("type") == "image_url"]

    def _reply_for(self, body: dict[str, Any]) -> dict[str, Any]:
        text = _last_user_text(body.get("messages", []))
        with self.lock:
            self.requests.append(body)
            refused = _quirk_reply(self.quirks, body)
            if refused is not None:
                return refused
            for match, replies in self.rules:
                if match in text and replies:
                    if "auto_answers_empty" in self.quirks and body.get("tools") and \
                            body.get("tool_choice") == "auto" and not replies[0].get("tool_calls"):
                        # Its grammar after "message:" admits only a function name or the end: the words the
                        # script holds are not said (and stay for the next request).
                        return {"empty": True}
                    return self._as_served(_cite(replies.pop(0), body.get("messages", [])), body)
        if self.default_words:
            return {"text": " ".join(f"word{i}" for i in range(self.default_words)), **self.default_pace}
        return {"text": f"You said: {text}", **self.default_pace}

    def _as_served(self, reply: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """The scripted reply, as the server lets it through."""
        if not reply.get("tool_calls"):
            return reply
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if schema is not None:
            # Output constrained to a JSON schema (llama-server, Ollama, vLLM, OpenAI): the scripted call is written
            # as the JSON the schema asks for, its arguments, or {"name", "arguments"} for a choice of tools.
            call = reply["tool_calls"][0]
            text = call.get("arguments", "{}")
            if "anyOf" in schema:
                text = json.dumps({"name": call["name"], "arguments": json.loads(text)})
            return {"text": text, "arg_chunk": reply.get("arg_chunk")}
        choice = body.get("tool_choice")
        if ("tools_need_choice" in self.quirks and choice is None) or \
                ("ignore_named_choice" in self.quirks and isinstance(choice, dict)) or \
                ("required_writes_text" in self.quirks and choice == "required"):
            # The server never offered the tools to the model (or did not force the call): it wrote text to the
            # token limit instead.
            return {"text": "I will now call the function to find out.", "finish_reason": "length"}
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Each write goes out at once, as real servers send them (uvicorn, Go and llama-server set TCP_NODELAY):
            # held back by Nagle until the client acknowledged the headers, on a kept-alive connection (where
            # the kernel delays acknowledgements) an answer's first chunk waited up to 40 ms.
            disable_nagle_algorithm = True

            drop_next = False

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one_request(self) -> None:
                if self.drop_next:
                    # llama-server closes the connection after a stream though it said keep-alive: whatever the
                    # client sends next on it gets no answer.
                    if self.rfile.readline():
                        with model.lock:
                            model.dropped += 1
                    self.close_connection = True
                    return
                super().handle_one_request()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") == "/v1/embeddings":
                    self._json(200, _embeddings(body))
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                reply = model._reply_for(body)
                with model.lock:
                    model.in_flight += 1
                    model.max_in_flight = max(model.max_in_flight, model.in_flight)
                try:
                    self._answer(body, reply)
                finally:
                    with model.lock:
                        model.in_flight -= 1

            def _answer(self, body: dict[str, Any], reply: dict[str, Any]) -> None:
                time.sleep(float(reply.get("delay", 0)))
                if "error" in reply:
                    status = int(reply["error"])
                    error: dict[str, Any] = {"message": reply.get("message", "scripted error"), "type": "server_error",
                                             "code": None}
                    if "int_error_code" in model.quirks:
                        error = {"code": status, "message": error["message"], "type": "server_error"}
                    raw = reply.get("body", {"error": error})
                    if isinstance(raw, str):
                        self._send(status, raw.encode(), "text/plain")
                    else:
                        self._json(status, raw)
                    return
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, _completion(body, {"text": ""} if reply.get("empty") else reply, model.quirks))

            def _json(self, status: int, data: dict[str, Any]) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def _send(self, status: int, raw: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, body: dict[str, Any], reply: dict[str, Any]) -> None:
                # Chunked, on a connection kept for the next request, as OpenAI, vLLM and Ollama serve streams: a
                # client that had to connect (and resolve the host) again for every answer would be measured
                # paying for it. llama-server says keep-alive too, then drops the next request ("close_after_stream").
                drops_next = "close_after_stream" in model.quirks
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                if drops_next:
                    self.send_header("Keep-Alive", "timeout=5, max=100")
                self.end_headers()

                def frame(data: bytes) -> bytes:
                    return b"%x\r\n%s\r\n" % (len(data), data)

                pause = float(reply.get("chunk_delay", 0))
                ttft = float(reply.get("ttft", 0))
                stall_after, stall = reply.get("stall", (0, 0.0))
                # Chunks go out on a schedule, not after fixed sleeps: a model keeps its token rate however busy
                # the machine is (it runs elsewhere), while sleeps would add this process's own delays to each.
                due = time.monotonic()
                schedule: list[tuple[float, bytes]] = []
                for i, chunk in enumerate([] if reply.get("empty") else _chunks(body, reply, model.quirks)):
                    if i == 1:  # after the role chunk: the model thinks before its first token
                        due += ttft
                    if stall_after and i == stall_after + 1:  # mid-answer, the model stops to think again
                        due += float(stall)
                    schedule.append((due, frame(f"data: {json.dumps(chunk)}\n\n".encode())))
                    if i:
                        due += pause
                schedule.append((due, frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"))
                paced = pause or ttft or stall
                hung_up_at = (PACER.send if paced else _send_now)(self.connection, schedule)
                if hung_up_at is not None:
                    with model.lock:  # the client hung up mid-answer (a real server stops generating then)
                        model.aborted.append((_last_user_text(body.get("messages", [])), hung_up_at))
                    self.close_connection = True
                    return
                self.drop_next = drops_next

        return Handler


def _send_now(sock: Any, pieces: list[tuple[float, bytes]]) -> float | None:
    """Write the pieces; None, or when the client was found gone."""
    try:
        for _, data in pieces:
            sock.sendall(data)
    except OSError:  # reset, broken pipe, closed: the client is gone
        return time.monotonic()
    return None


class _Stream:
    def __init__(self, sock: Any, schedule: list[tuple[float, bytes]]) -> None:
        self.sock, self.schedule, self.next = sock, schedule, 0
        self.done = threading.Event()
        self.hung_up_at: float | None = None


class _Pacer:
    """Writes every paced stream's chunks when they are due, from one thread.

    Each stream sleeping in its own thread between tokens woke a hundred threads fifty times a second each at the
    benchmark's load — a third of a core, in the process that also runs the benchmark's clients, for what a real
    model server does on another machine."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Stream]] = []
        self._cv = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def send(self, sock: Any, schedule: list[tuple[float, bytes]]) -> float | None:
        """Write each piece at its time; returns when all are written: None, or when the client was found gone."""
        stream = _Stream(sock, schedule)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="model-pacer", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (schedule[0][0], next(self._order), stream))
            self._cv.notify()
        stream.done.wait()
        return stream.hung_up_at

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cv.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, stream = heapq.heappop(self._heap)
            now = time.monotonic()
            try:
                due = [data for at, data in stream.schedule[stream.next:] if at <= now]
                stream.next += len(due)
                stream.hung_up_at = _send_now(stream.sock, [(now, b"".join(due))])
            except Exception:  # never leave a stream waiting on a thread that died
                stream.hung_up_at = now
            if stream.hung_up_at is not None or stream.next == len(stream.schedule):
                stream.done.set()
                continue
            with self._cv:
                heapq.heappush(self._heap, (stream.schedule[stream.next][0], next(self._order), stream))


PACER = _Pacer()


def _usage(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages", []))) // 4
    completion = max(1, len(reply.get("text", "") + json.dumps(reply.get("tool_calls", ""))) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _calls(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": c.get("id", f"call_scripted{i}_{int(time.time() * 1000)}"), "name": c["name"],
             "arguments": c.get("arguments", "{}")} for i, c in enumerate(reply.get("tool_calls", []))]


def _chunks(body: dict[str, Any], reply: dict[str, Any], quirks: set[str] | None = None) -> list[dict[str, Any]]:
    quirks = quirks or set()
    base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "scripted")}
    # The role comes first, before the model has produced anything: content "" from OpenAI, null from llama-server.
    first = None if "null_first_content" in quirks else ""
    out: list[dict[str, Any]] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": first},
                                                       "finish_reason": None}]}]
    words = reply.get("text", "").split(" ")
    for i, word in enumerate(words if reply.get("text") else []):
        piece = word if i == 0 else " " + word
        out.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    per_call: list[list[dict[str, Any]]] = []
    for i, call in enumerate(_calls(reply)):
        args = call["arguments"]
        size = int(reply.get("arg_chunk") or (len(args) + 1) // 2 or 1)
        pieces = [args[j:j + size] for j in range(0, len(args), size)]
        header = {"index": i, "id": call["id"], "type": "function"}
        if "repeat_tool_header" in quirks:  # llama-cpp-python: the id and name again in every delta
            per_call.append([{**header, "function": {"name": call["name"], "arguments": p}} for p in ["", *pieces]])
            continue
        if reply.get("empty_first_piece") or not pieces:
            pieces.insert(0, "")
        per_call.append([{**header, "function": {"name": call["name"], "arguments": pieces[0]}},
                         *({"index": i, "function": {"arguments": p}} for p in pieces[1:])])
    if reply.get("interleave_calls"):
        deltas = [d for turn in itertools.zip_longest(*per_call) for d in turn if d is not None]
    else:
        deltas = [d for call_deltas in per_call for d in call_deltas]
    for d in deltas:
        out.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": None}]})
    finish = reply.get("finish_reason") or ("tool_calls" if reply.get("tool_calls") else "stop")
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if (body.get("stream_options") or {}).get("include_usage") and "no_stream_usage" not in quirks:
        out.append({**base, "choices": [], "usage": _usage(body, reply)})
    return out


def _completion(body: dict[str, Any], reply: dict[str, Any], quirks: set[str] | None = None) -> dict[str, Any]:
    calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
             for c in _calls(reply)]
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("text") or None}
    if calls:
        message["tool_calls"] = calls
        if "legacy_function_call" in (quirks or set()):
            message["function_call"] = calls[0]["function"]
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"), "usage": _usage(body, reply),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": reply.get("finish_reason") or ("tool_calls" if calls else "stop")}]}


if __name__ == "__main__":  # a quick manual check: python -m tests.model_server
    m = ScriptedModel().start()
    req = urllib.request.Request(m.base_url + "/chat/completions", data=json.dumps(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json"})
    print(urllib.request.urlopen(req).read().decode())
    m.stop()
