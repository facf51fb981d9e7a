// A run's server-sent events, read with fetch (EventSource can neither POST nor send the key) and parsed by
// eventsource-parser. If the connection drops before the stream's `done`, the page resumes from the last event
// id it saw with the API's extension GET /threads/{thread_id}/runs/{run_id}/events (Last-Event-ID), so nothing
// is lost and nothing is shown twice.

import { createParser } from "../vendor/eventsource-parser/index.js";
import { ApiError } from "./api.js";

const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];
const MAX_ATTEMPTS = 12;

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });

// Merges a delta into what was accumulated, as the official SDKs do: strings append, objects merge, and
// arrays of {index, …} merge element by element (a tool call's arguments arrive in pieces under one index).
export function accumulate(target, delta) {
  const out = target && typeof target === "object" ? { ...target } : {};
  for (const [key, value] of Object.entries(delta || {})) {
    const have = out[key];
    if (have === undefined || have === null || key === "index" || key === "type") out[key] = value;
    else if (typeof have === "string" && typeof value === "string") out[key] = have + value;
    else if (Array.isArray(have) && Array.isArray(value)) out[key] = mergeIndexed(have, value);
    else if (typeof have === "object" && value && typeof value === "object") out[key] = accumulate(have, value);
    else out[key] = value;
  }
  return out;
}

function mergeIndexed(have, more) {
  const out = [...have];
  for (const item of more) {
    const at = item && typeof item === "object" && "index" in item ? out.findIndex((x) => x?.index === item.index) : -1;
    if (at >= 0) out[at] = accumulate(out[at], item);
    else out.push(item);
  }
  return out;
}

// Reads one HTTP response of events; returns true when the stream reached `done`.
async function consume(response, state, onEvent) {
  let done = false;
  const parser = createParser({
    onEvent(message) {
      if (message.id) state.lastEventId = message.id;
      if (message.event === "done") {
        done = true;
        return;
      }
      const data = JSON.parse(message.data);
      if (message.event === "thread.run.created") {
        state.runId = data.id;
        state.threadId = data.thread_id;
      }
      onEvent(message.event, data);
    },
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    parser.feed(decoder.decode(value, { stream: true }));
    state.attempts = 0; // events flowed: a later drop starts its retries afresh
  }
  return done;
}

/**
 * Follows a run from `open()` (a function returning the first streaming response) to the end of its stream.
 * `known` = {threadId, runId} when resuming a run that is already known (submit_tool_outputs).
 * Handlers: onEvent(name, data); onConnection("reconnecting" | "connected", attempt).
 * Throws ApiError when the API refuses the request (shown in place) or the stream cannot be resumed.
 */
export async function followRun(client, open, { onEvent, onConnection = () => {}, signal, known = {} }) {
  const state = { lastEventId: null, runId: known.runId ?? null, threadId: known.threadId ?? null, attempts: 0 };
  let response = await open();
  for (;;) {
    try {
      if (await consume(response, state, onEvent)) return state;
    } catch (exc) {
      if (exc.name === "AbortError" || signal?.aborted) throw exc;
      if (exc instanceof SyntaxError) throw new ApiError(0, { message: `The stream carried bad data: ${exc.message}` });
      // Otherwise the connection broke mid-stream: resume below.
    }
    if (!state.runId) throw new ApiError(0, { message: "The connection closed before the run started." });
    for (;;) {
      state.attempts += 1;
      if (state.attempts > MAX_ATTEMPTS) {
        throw new ApiError(0, { message: "Lost the connection to the run's stream; reopen the thread to see how it ended." });
      }
      onConnection("reconnecting", state.attempts);
      await sleep(RETRY_DELAYS_MS[Math.min(state.attempts - 1, RETRY_DELAYS_MS.length - 1)], signal);
      try {
        response = await client.open("GET", `/threads/${state.threadId}/runs/${state.runId}/events`, undefined, {
          extraHeaders: state.lastEventId ? { "Last-Event-ID": state.lastEventId } : {},
          signal,
        });
        onConnection("connected", state.attempts);
        break;
      } catch (exc) {
        if (exc.name === "AbortError") throw exc;
        if (exc instanceof ApiError && exc.status >= 400 && exc.status < 500) throw exc;
      }
    }
  }
}
