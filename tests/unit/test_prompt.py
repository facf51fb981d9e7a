"""Prompt building and truncation."""

from shared.models import Message, Run, RunStep
from worker.prompt import build, estimate_tokens


def msg(i: int, text: str, role: str = "user") -> Message:
    return Message(id=f"msg_{i}", project_id="p", thread_id="t", created_at=0, role=role,
                   content=[{"type": "text", "text": {"value": text, "annotations": []}}])


def run(**kw: object) -> Run:
    return Run(id="run_1", project_id="p", thread_id="t", assistant_id="a", created_at=0, model="m", **kw)


def test_everything_fits() -> None:
    p = build(run(instructions="Be brief."), [msg(1, "hi"), msg(2, "hello", "assistant"), msg(3, "bye")], [],
              window=8192, reserve=1024)
    assert p.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    assert p.dropped == 0


def test_oldest_messages_go_first_never_instructions_or_newest() -> None:
    history = [msg(i, "x" * 4000) for i in range(10)]  # ~1000 tokens each
    p = build(run(instructions="I" * 400), history, [], window=4096, reserve=1024)
    assert p.messages[0]["role"] == "system"
    assert p.messages[-1]["content"] == history[-1].content[0]["text"]["value"]
    assert p.dropped == 8 and len(p.messages) == 3
    assert p.tokens <= 4096 - 1024


def test_newest_message_is_kept_even_when_alone_too_big() -> None:
    p = build(run(), [msg(1, "a"), msg(2, "y" * 100_000)], [], window=1000, reserve=100)
    assert [m["content"][:1] for m in p.messages] == ["y"]


def test_last_messages_strategy_and_max_prompt_tokens() -> None:
    history = [msg(i, f"m{i}") for i in range(6)]
    p = build(run(truncation_strategy={"type": "last_messages", "last_messages": 2}), history, [],
              window=8192, reserve=0)
    assert [m["content"] for m in p.messages] == ["m4", "m5"] and p.dropped == 4
    big = [msg(i, "z" * 2000) for i in range(6)]
    p = build(run(max_prompt_tokens=1200), big, [], window=100_000, reserve=0)
    assert p.tokens <= 1200 and p.dropped == 4


def test_answered_tool_calls_follow_the_thread() -> None:
    details = {"type": "tool_calls", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}", "output": "42"}}]}
    step = RunStep(id="step_1", project_id="p", run_id="run_1", thread_id="t", assistant_id="a", engine_seq=1,
                   kind="tool_calls", created_at=0, status="completed", step_details=details)
    p = build(run(), [msg(1, "q")], [step], window=8192, reserve=0)
    assert p.messages[1]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    # "" rather than null: llama-cpp-python's server answers null with a 500; OpenAI's spec allows both.
    assert p.messages[1]["content"] == ""
    assert p.messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}


def test_estimate_grows_with_text() -> None:
    assert estimate_tokens({"content": "a" * 400}) > estimate_tokens({"content": "a"})
