"""What a model turn makes of a run, decided from what the model returned — pure, so every case is unit-tested
without a stack. worker/outcome.py's `commit` does it.

A text answer becomes the assistant message (with its figures, file links and citations resolved); server-side
tool calls become a tool step for the tool task to run; function calls ask the client (requires_action); a turn
cut at the token limit leaves the run incomplete.
"""

from typing import Any

from shared import wire
from shared.dispatch import Task
from shared.models import Message, Run, RunStep
from shared.runstate import Event
from worker import code_tool, model, retrieval, toolcalls
from worker.live import LiveStep
from worker.outcome import Outcome


def decide(run: Run, live: LiveStep, result: model.ModelResult, prior: list[RunStep], at: int) -> Outcome:
    """`prior`: the run's steps before this turn (their outputs resolve the reply's links and citations)."""
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
             "total_tokens": result.prompt_tokens + result.completion_tokens}
    total = run.usage or {}
    out = Outcome(event=Event.REPLIED, given={"usage": {k: total.get(k, 0) + v for k, v in usage.items()}})
    truncated = result.finish_reason == "length"
    if result.text or not result.tool_calls:
        message = Message(id=live.message_id, project_id=run.project_id, thread_id=run.thread_id,
                          created_at=live.created, role="assistant", assistant_id=run.assistant_id, run_id=run.id,
                          content=reply_content(result.text, prior), status="incomplete" if truncated else "completed",
                          completed_at=None if truncated else at, incomplete_at=at if truncated else None,
                          incomplete_details={"reason": "max_tokens"} if truncated else None)
        step = live.message_step(None if result.tool_calls else usage)
        step.status, step.completed_at = "completed", at
        out.inserts += [message, step]
        if not live.announced_message:
            out.before += live.message_opening()
        out.before += [("thread.message.completed", wire.message(message)),
                       ("thread.run.step.completed", wire.step(step))]
    if result.tool_calls:
        server = any(toolcalls.is_server_call(c.name, run.tools) for c in result.tool_calls)
        # With server-side calls, every call of the turn goes on the step the tool task runs; it asks the client
        # for the function outputs afterwards.
        entries = [toolcalls.step_entry(c.id, c.name, c.arguments, run.tools) if server
                   else toolcalls.function_entry(c.id, c.name, c.arguments) for c in result.tool_calls]
        out.inserts.append(live.tool_step(entries, usage))
        if not live.announced_tools:
            out.before += live.tools_opening()
        if server:
            out.event = Event.CONTINUE
            out.next_task = Task.CODE if toolcalls.has_code(entries) else Task.SEARCH
        else:
            out.event = Event.CALLED_FUNCTIONS
            out.given["required_action"] = toolcalls.required_action(entries)
    elif truncated:
        out.event = Event.TRUNCATED
        out.given["incomplete_details"] = {"reason": "max_completion_tokens"}
    return out


def reply_content(text_value: str, prior: list[RunStep]) -> list[dict[str, Any]]:
    """Figures the run's code made come first, as OpenAI's code interpreter showed them; sandbox links to files
    the code wrote are annotated with the files' ids, and citation markers with the searched files'."""
    annotations = sorted([*code_tool.annotate(text_value, code_tool.files_of(prior)),
                          *retrieval.annotate(text_value, retrieval.sources_of(prior))],
                         key=lambda a: a["start_index"])
    return [*({"type": "image_file", "image_file": {"file_id": f}} for f in code_tool.images_of(prior)),
            {"type": "text", "text": {"value": text_value, "annotations": annotations}}]
