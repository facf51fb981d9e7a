// What a thread shows, built the same way from its stored history and from a run's live events: an ordered list
// of items — messages outside runs, and runs, each with its steps in order (a message_creation step shows its
// message; a tool_calls step shows its calls). Pure data: the view renders it, tests can feed it events.

import { accumulate } from "./stream.js";

export const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "incomplete"]);

export function emptyConversation(threadId = null) {
  return { threadId, items: [], messages: {}, runs: {}, stepRun: {}, error: null };
}

function runEntry(conv, run) {
  let entry = conv.runs[run.id];
  if (!entry) {
    entry = { run, stepIds: [], steps: {}, messageIds: [], live: {} };
    conv.runs[run.id] = entry;
    conv.items.push({ kind: "run", id: run.id });
  }
  return entry;
}

function addMessage(conv, message) {
  const known = message.id in conv.messages;
  conv.messages[message.id] = message;
  if (known) return;
  const entry = message.run_id && conv.runs[message.run_id];
  if (entry) entry.messageIds.push(message.id);
  else conv.items.push({ kind: "message", id: message.id });
}

function addStep(conv, step, reset) {
  const entry = conv.runs[step.run_id];
  if (!entry) return;
  if (!entry.steps[step.id]) entry.stepIds.push(step.id);
  // A step's `created` event starts it over (a step redone after a worker crash repeats it), later
  // events carry the whole step as stored, which supersedes what the deltas built.
  entry.steps[step.id] = reset || !entry.steps[step.id] ? step : { ...entry.steps[step.id], ...step };
  conv.stepRun[step.id] = step.run_id;
}

/** Applies one streamed event (name, data) at client time `now` (ms). Mutates and returns `conv`. */
export function applyEvent(conv, name, data, now = Date.now()) {
  if (name === "error") {
    conv.error = data?.message || data?.error?.message || "The stream reported an error.";
    return conv;
  }
  if (name === "thread.created") {
    conv.threadId = data.id;
    return conv;
  }
  if (name.startsWith("thread.run.step.")) {
    if (name === "thread.run.step.delta") {
      const entry = conv.runs[conv.stepRun[data.id]];
      const step = entry?.steps[data.id];
      if (step) entry.steps[data.id] = { ...step, step_details: accumulate(step.step_details, data.delta?.step_details) };
    } else {
      addStep(conv, data, name === "thread.run.step.created");
    }
    return conv;
  }
  if (name.startsWith("thread.run.")) {
    const entry = runEntry(conv, data);
    entry.run = data;
    entry.live.firstEventAt ??= now;
    if (TERMINAL.has(data.status) || data.status === "requires_action") entry.live.endedAt = now;
    else entry.live.endedAt = undefined;
    return conv;
  }
  if (name.startsWith("thread.message.")) {
    if (name === "thread.message.delta") {
      const message = conv.messages[data.id];
      if (!message) return conv;
      conv.messages[data.id] = accumulate(message, { content: data.delta?.content || [] });
      const entry = conv.runs[message.run_id];
      if (entry) entry.live.firstTokenAt ??= now;
    } else {
      addMessage(conv, data); // `created` starts the message over; later events carry it whole
    }
  }
  return conv;
}

/** A conversation from what the API lists: messages (ascending), runs (ascending), and steps by run id. */
export function fromHistory(threadId, messages, runs, stepsByRun) {
  const conv = emptyConversation(threadId);
  const order = [
    ...messages.filter((m) => !m.run_id || !runs.some((r) => r.id === m.run_id)).map((m, i) => ({ t: m.created_at, r: 0, i, m })),
    ...runs.map((run, i) => ({ t: run.created_at, r: 1, i, run })),
  ].sort((a, b) => a.t - b.t || a.r - b.r || a.i - b.i);
  for (const x of order) {
    if (x.m) addMessage(conv, x.m);
    else {
      runEntry(conv, x.run);
      for (const step of stepsByRun[x.run.id] || []) addStep(conv, step, true);
    }
  }
  for (const m of messages) if (m.run_id && conv.runs[m.run_id]) addMessage(conv, m);
  return conv;
}

/** The pieces of a run in display order: [{kind: "message", message} | {kind: "tools", step}]. */
export function runPieces(conv, runId) {
  const entry = conv.runs[runId];
  if (!entry) return [];
  const shown = new Set();
  const out = [];
  for (const id of entry.stepIds) {
    const step = entry.steps[id];
    if (step.type === "message_creation") {
      const mid = step.step_details?.message_creation?.message_id;
      if (conv.messages[mid]) {
        out.push({ kind: "message", message: conv.messages[mid] });
        shown.add(mid);
      }
    } else if (step.type === "tool_calls") {
      out.push({ kind: "tools", step });
    }
  }
  for (const mid of entry.messageIds) if (!shown.has(mid)) out.push({ kind: "message", message: conv.messages[mid] });
  return out;
}

/** The run that is still going (at most one per thread), if any. */
export function activeRun(conv) {
  for (let i = conv.items.length - 1; i >= 0; i -= 1) {
    const item = conv.items[i];
    if (item.kind === "run") {
      const run = conv.runs[item.id].run;
      return TERMINAL.has(run.status) ? null : run;
    }
  }
  return null;
}
