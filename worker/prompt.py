"""What the model is sent: instructions, the thread's messages, and this run's tool-call rounds, fitted into
the model's context window. Threads are unlimited; the prompt is not. The oldest thread messages are dropped
first — never the instructions, never the newest message, never this run's tool rounds.

Token counts are estimated (about 4 characters a token): no tokenizer files can be fetched at run time, and
the estimate only has to keep the prompt inside the window, with a margin."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.models import Run, RunStep
from worker import vision

Images = Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4


# What an image costs the model, whatever its size in bytes: OpenAI's figures for a low-detail image and for a
# 1024x1024 one in high detail (the estimate only has to keep the prompt inside the window).
IMAGE_TOKENS = {"low": 85}
DEFAULT_IMAGE_TOKENS = 765
IMAGE_PARTS = ("image_url", "image_file")


class ThreadMessage(Protocol):
    """What the prompt needs of a thread's message (a stored Message, or the two columns the engine reads)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> list[dict[str, Any]]: ...


def _image_tokens(part: dict[str, Any]) -> int:
    return IMAGE_TOKENS.get((part.get(part["type"]) or {}).get("detail") or "", DEFAULT_IMAGE_TOKENS)


def estimate_tokens(message: dict[str, Any]) -> int:
    content = message.get("content") or ""
    images = 0
    if isinstance(content, list):
        images = sum(_image_tokens(p) for p in content if p.get("type") in IMAGE_PARTS)
        content = [p for p in content if p.get("type") not in IMAGE_PARTS]
    return PER_MESSAGE_TOKENS + len(json.dumps(content, ensure_ascii=False)) // CHARS_PER_TOKEN + images \
        + len(json.dumps(message.get("tool_calls") or "")) // CHARS_PER_TOKEN


def _content(m: ThreadMessage) -> Any:
    """Images reach the model in user messages only (Chat Completions takes none from the assistant): an
    `image_file` stays a reference until the prompt is fitted (worker/vision.py inlines the kept ones)."""
    parts: list[dict[str, Any]] = []
    for part in m.content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif kind == "image_url" and m.role == "user":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        elif kind == "image_file" and m.role == "user":
            parts.append({"type": "image_file", "image_file": part["image_file"]})
        elif kind == "image_url":
            parts.append({"type": "text", "text": f"[image {part['image_url']['url'][:200]}]"})
        elif kind == "image_file":
            parts.append({"type": "text", "text": f"[image file {part['image_file']['file_id']}]"})
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def thread_message(m: ThreadMessage) -> dict[str, Any]:
    return {"role": m.role, "content": _content(m)}


def _call(c: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """(the assistant's tool call, its output) for a function, code_interpreter or file_search call."""
    if c.get("type") == "function":
        fn = c["function"]
        return ({"id": c["id"], "type": "function", "function": {"name": fn["name"], "arguments": fn["arguments"]}},
                fn.get("output") or "")
    if c.get("type") == "code_interpreter":
        ci = c["code_interpreter"]
        logs = "".join(o.get("logs", "") for o in ci.get("outputs") or [] if o.get("type") == "logs")
        logs += "".join(f"[image {o['image']['file_id']} was shown to the user]\n"
                        for o in ci.get("outputs") or [] if o.get("type") == "image")
        logs += "".join(f"[saved /mnt/data/{path}; link it for the user as sandbox:/mnt/data/{path}]\n"
                        for path in c.get("_files") or {})
        return ({"id": c["id"], "type": "function",
                 "function": {"name": "code_interpreter", "arguments": json.dumps({"code": ci["input"]})}},
                logs or "(no output)")
    if c.get("type") == "file_search" and "_output" in c:
        return ({"id": c["id"], "type": "function", "function": {"name": "file_search",
                                                                 "arguments": c.get("_arguments") or "{}"}},
                c["_output"])
    return None


def tool_rounds(steps: list[RunStep]) -> list[dict[str, Any]]:
    """This run's answered tool calls: the assistant turn that asked, then one tool message per output."""
    out: list[dict[str, Any]] = []
    for s in steps:
        if s.kind != "tool_calls" or s.status != "completed":
            continue
        pairs = [p for p in map(_call, s.step_details.get("tool_calls", [])) if p is not None]
        if not pairs:
            continue
        # content "" rather than null: both are OpenAI's spec, but llama-cpp-python refuses null (HTTP 500).
        out.append({"role": "assistant", "content": "", "tool_calls": [call for call, _ in pairs]})
        out.extend({"role": "tool", "tool_call_id": call["id"], "content": output} for call, output in pairs)
    return out


def system_prompt(run: Run) -> str | None:
    parts = [p for p in (run.instructions, run.additional_instructions) if p]
    return "\n\n".join(parts) or None


@dataclass
class Prompt:
    messages: list[dict[str, Any]]
    dropped: int  # thread messages left out to fit
    tokens: int  # estimated prompt size


def build(run: Run, history: Sequence[ThreadMessage], steps: list[RunStep], *, window: int,
          reserve: int, images: Images = vision.inline) -> Prompt:
    """history: the thread's messages, oldest first. `reserve`: tokens kept free for the completion. `images`
    inlines the image files of the messages kept (I/O: blob reads)."""
    budget = window - reserve
    if run.max_prompt_tokens:
        budget = min(budget, run.max_prompt_tokens)
    strategy = run.truncation_strategy or {}
    if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
        kept = history[-int(strategy["last_messages"]):]
    else:
        kept = list(history)
    skipped = len(history) - len(kept)
    system = system_prompt(run)
    head = [{"role": "system", "content": system}] if system else []
    tail = tool_rounds(steps)
    thread = [thread_message(m) for m in kept]
    fixed = sum(map(estimate_tokens, head + tail))
    sizes = [estimate_tokens(m) for m in thread]
    total = fixed + sum(sizes)
    start = 0
    # Drop from the oldest end while over budget, but always keep the newest message.
    while total > budget and start < len(thread) - 1:
        total -= sizes[start]
        start += 1
    return Prompt(messages=head + images(thread[start:], run.project_id) + tail, dropped=skipped + start,
                  tokens=total)
