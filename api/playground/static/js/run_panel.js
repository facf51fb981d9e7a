// The side panel: one run's status, timings (from the run object, and measured by the page while it streams),
// token usage, and its steps with their own usage and durations.

import { html, duration, when } from "./ui.js";

const ENDED_AT = ["completed_at", "failed_at", "cancelled_at"];

// The API's times are whole seconds.
const seconds = (from, to) => (from && to ? (to - from < 1 ? "under 1 s" : `${to - from} s`) : "–");

function stepSummary(step) {
  if (step.type === "message_creation") return "Message";
  const calls = step.step_details?.tool_calls || [];
  return `Tool calls: ${calls.map((c) => (c.type === "function" ? c.function?.name : c.type)).join(", ") || "…"}`;
}

function Usage({ usage }) {
  if (!usage) return html`<span class="meta">–</span>`;
  return html`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens} tokens`;
}

export function RunPanel({ conv, runId }) {
  const entry = runId && conv.runs[runId];
  if (!entry) return html`<p class="meta">Run details appear here once a run starts.</p>`;
  const { run, live } = entry;
  const ended = ENDED_AT.map((k) => run[k]).find(Boolean);
  const row = (label, value) => html`<dt>${label}</dt><dd>${value}</dd>`;
  return html`
    <dl class="facts">
      ${row("Run", html`<code>${run.id}</code>`)}
      ${row("Status", html`<span class=${`status ${run.status}`}>${run.status}</span>`)}
      ${row("Model", run.model)}
      ${row("Created", when(run.created_at))}
      ${row("Waited in queue", seconds(run.created_at, run.started_at))}
      ${row("Ran for", seconds(run.started_at, ended))}
      ${live.openedAt ? row("First token after", live.firstTokenAt ? duration(live.firstTokenAt - live.openedAt) : "–") : ""}
      ${live.openedAt && live.endedAt ? row("Streamed for", duration(live.endedAt - live.openedAt)) : ""}
      ${row("Usage", html`<${Usage} usage=${run.usage} />`)}
      ${run.last_error ? row("Error", `${run.last_error.code}: ${run.last_error.message}`) : ""}
    </dl>
    <h3>Steps</h3>
    ${entry.stepIds.length === 0 ? html`<p class="meta">No steps yet.</p>` : html`
      <ol class="steps">
        ${entry.stepIds.map((id) => {
          const s = entry.steps[id];
          const end = s.completed_at || s.failed_at || s.cancelled_at || s.expired_at;
          return html`<li key=${id}>
            <span class="title">${stepSummary(s)}</span>
            <span class=${`status ${s.status}`}>${s.status}</span>
            <span class="meta">${end ? seconds(s.created_at, end) : ""}</span>
            <div class="meta"><${Usage} usage=${s.usage} /></div>
            ${s.last_error ? html`<div class="error">${s.last_error.message}</div>` : ""}
          </li>`;
        })}
      </ol>`}`;
}
