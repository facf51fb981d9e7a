"""A Chat Completions answer, streamed or not, read into one ModelResult whatever the server's dialect.

Servers chunk tool calls differently: OpenAI and llama-server send a call's id and name once, then pieces of its
arguments; llama-cpp-python repeats the id and name in every delta (appending them gave
`getCurrentWeathergetCurrentWeather…`); arguments split anywhere, pieces may be empty (a final "" included); some
servers leave out `index` or use the legacy `function_call`. Usage may be missing (llama-cpp-python never sends
it in streams) or all zeros: it is then estimated, and the result says so.

Decisions only, no I/O: the model client feeds chunks in and relays what comes out."""

import json
import secrets
from dataclasses import dataclass
from typing import Any

from worker.model_types import ModelResult, ToolCall
from worker.prompt import CHARS_PER_TOKEN, estimate_tokens
from worker.upstream_request import ForcedCall, parse_forced


@dataclass
class Text:
    piece: str


@dataclass
class ToolDelta:
    index: int  # the call's position in the answer
    call: ToolCall  # the call so far (id and name known)
    piece: str  # the arguments' newest piece, never empty


Delta = Text | ToolDelta


class AnswerReader:
    def __init__(self, tool_names: list[str], forced: ForcedCall | None = None) -> None:
        self.known = set(tool_names)
        # A forced call obtained as schema-constrained text: the text is the call. Its arguments stream as the
        # call's pieces; a wrapped one ({"name", "arguments"}) is known only at the end.
        self.forced = forced
        self.result = ModelResult()
        self.calls: list[ToolCall] = []
        self._slot: dict[int, int] = {}  # the server's call index -> position in self.calls
        self._server_ids: set[int] = set()  # positions whose id came from the server (not made up here)
        self._usage: dict[str, Any] | None = None

    # ---- streamed ----------------------------------------------------------------------------------------
    def chunk(self, chunk: dict[str, Any]) -> list[Delta]:
        """One `chat.completion.chunk`; returns what it adds, for relaying to stream clients."""
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        out: list[Delta] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for; a server that sends more choices is not followed
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.extend(self._text(delta["content"]))
            calls = delta.get("tool_calls") or ([{"function": delta["function_call"]}]
                                                if delta.get("function_call") else [])
            for pos, tc in enumerate(calls):
                out.extend(self._tool_delta(pos, tc))
            if choice.get("finish_reason"):
                self.result.finish_reason = choice["finish_reason"]
        return out

    def _text(self, piece: str) -> list[Delta]:
        self.result.text += piece
        if self.forced is None:
            return [Text(piece)]
        if self.forced.wrapped:
            return []
        return self._tool_delta(0, {"index": 0, "function": {"name": self.forced.names[0], "arguments": piece}})

    def _tool_delta(self, pos: int, tc: dict[str, Any]) -> list[Delta]:
        index = tc["index"] if isinstance(tc.get("index"), int) else pos
        fn = tc.get("function") or {}
        new_id, name, piece = tc.get("id") or "", fn.get("name") or "", fn.get("arguments") or ""
        if not isinstance(piece, str):  # some servers send the arguments as an object
            piece = json.dumps(piece)
        known_slot = self._slot.get(index)
        call = self.calls[known_slot] if known_slot is not None else None
        repeated = call is not None and bool(new_id) and new_id == call.id
        if call is None or known_slot is None or (new_id and known_slot in self._server_ids and not repeated):
            # First delta of a call, or a different id at an index already used (servers that put every call
            # at index 0): a new call.
            slot = self._slot[index] = len(self.calls)
            call = ToolCall(id=new_id or f"call_{secrets.token_hex(12)}")
            self.calls.append(call)
            if new_id:
                self._server_ids.add(slot)
        else:
            slot = known_slot
            if new_id and slot not in self._server_ids:
                call.id = new_id  # the id came after the first delta: the server's own wins
                self._server_ids.add(slot)
        if name and not (call.name == name and (repeated or name in self.known)):
            # A name is appended only when it is a piece of one: not when it repeats the whole name again.
            call.name += name
        call.arguments += piece
        return [ToolDelta(slot, call, piece)] if piece else []

    # ---- not streamed ------------------------------------------------------------------------------------
    def completion(self, body: dict[str, Any]) -> list[Delta]:
        """A whole `chat.completion`, as the deltas a stream of it would have given."""
        out: list[Delta] = []
        self._usage = body.get("usage") or None
        choice = next((c for c in body.get("choices") or () if c.get("index", 0) == 0), None) or {}
        message = choice.get("message") or {}
        if message.get("content"):
            out.extend(self._text(message["content"]))
        calls = message.get("tool_calls") or ([{"function": message["function_call"]}]
                                              if message.get("function_call") else [])
        for pos, tc in enumerate(calls):
            out.extend(self._tool_delta(pos, {**tc, "index": pos}))
        self.result.finish_reason = choice.get("finish_reason")
        return out

    def _forced_call(self) -> None:
        """The text was the forced call: it becomes the call. Cut short by the token limit, it stays a call with
        the arguments written so far (as OpenAI's would); not JSON at all, it stays the reply, an answer in words.
        """
        assert self.forced is not None
        truncated = self.result.finish_reason == "length"
        parsed = parse_forced(self.result.text, self.forced)
        if parsed is None and not (truncated and not self.forced.wrapped):
            self.calls.clear()
            return
        if self.forced.wrapped and parsed is not None:
            self.calls.append(ToolCall(id=f"call_{secrets.token_hex(12)}", name=parsed[0], arguments=parsed[1]))
        self.result.text = ""
        if self.result.finish_reason == "stop":
            self.result.finish_reason = "tool_calls"

    # ---- the end -----------------------------------------------------------------------------------------
    def finish(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResult:
        """The result; `messages` and `tools` (what was sent) size the prompt if usage must be estimated."""
        result = self.result
        if self.forced is not None:
            self._forced_call()
        for call in self.calls:
            if not call.arguments.strip():
                call.arguments = "{}"  # what OpenAI sends for a call without arguments
        result.tool_calls = [c for c in self.calls if c.name]  # a call without a name cannot be made
        usage = self._usage or {}
        result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        result.completion_tokens = int(usage.get("completion_tokens") or 0)
        if not (result.prompt_tokens or result.completion_tokens):
            result.usage_estimated = True
            result.prompt_tokens = sum(map(estimate_tokens, messages)) + \
                (len(json.dumps(tools)) // CHARS_PER_TOKEN if tools else 0)
            written = len(result.text) + sum(len(c.name) + len(c.arguments) for c in result.tool_calls)
            result.completion_tokens = max(1, written // CHARS_PER_TOKEN)
        return result
