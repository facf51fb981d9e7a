// Threads: the list (newest first), one thread's conversation with its runs streamed as they happen, the
// message box, function calls waiting for outputs, and the run panel.

import { Composer } from "./composer.js";
import { activeRun, applyEvent, emptyConversation, fromHistory } from "./conversation.js";
import { ConversationLog } from "./log.js";
import { RunPanel } from "./run_panel.js";
import { followRun } from "./stream.js";
import { html, messageOf, useEffect, useId, useRef, useState, when } from "./ui.js";

const HISTORY_RUNS = 50; // runs (with their steps) loaded when a thread is opened

function ToolOutputs({ run, onSubmit }) {
  const calls = run.required_action?.submit_tool_outputs?.tool_calls || [];
  const [outputs, setOutputs] = useState({});
  const [busy, setBusy] = useState(false);
  const headingId = useId("outputs");
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    try {
      await onSubmit(calls.map((c) => ({ tool_call_id: c.id, output: outputs[c.id] || "" })));
    } finally {
      setBusy(false);
    }
  }
  return html`
    <form class="outputs" onSubmit=${submit} aria-labelledby=${headingId}>
      <h3 id=${headingId}>The run waits for ${calls.length === 1 ? "a function's output" : "your functions' outputs"}</h3>
      ${calls.map((c) => html`
        <div key=${c.id} class="call">
          <p><code>${c.function.name}</code> called with</p>
          <pre class="code">${c.function.arguments}</pre>
          <label for=${`out-${c.id}`}>Output of ${c.function.name} (${c.id})</label>
          <textarea id=${`out-${c.id}`} rows="3" value=${outputs[c.id] || ""}
            onInput=${(e) => setOutputs({ ...outputs, [c.id]: e.currentTarget.value })}></textarea>
        </div>`)}
      <button type="submit" class="primary" disabled=${busy}>Submit outputs</button>
    </form>`;
}

function threadTitle(t) {
  return t.metadata?.title || "Untitled thread";
}

export function ThreadsView({ client, visible }) {
  const [threads, setThreads] = useState([]);
  const [hasMore, setHasMore] = useState(false);
  const [assistants, setAssistants] = useState([]);
  const [assistantId, setAssistantId] = useState("");
  const [selectedRun, setSelectedRun] = useState(null);
  const [error, setError] = useState("");
  const [connection, setConnection] = useState("");
  const [, setTick] = useState(0);
  const conv = useRef(emptyConversation());
  const stream = useRef(null); // the AbortController of the stream being followed
  const frame = useRef(0);

  // Many events arrive per frame while text streams: draw at most once per frame.
  function redraw() {
    if (!frame.current) {
      frame.current = requestAnimationFrame(() => {
        frame.current = 0;
        setTick((n) => n + 1);
      });
    }
  }

  async function loadThreads(after) {
    try {
      const page = await client.get("/threads", { limit: 30, after });
      setThreads((list) => (after ? [...list, ...page.data] : page.data));
      setHasMore(page.has_more);
    } catch (exc) {
      setError(messageOf(exc));
    }
  }
  useEffect(() => { loadThreads(); }, []);
  useEffect(() => {
    if (!visible) return;
    client.all("/assistants", {}, 200).then((list) => {
      setAssistants(list);
      setAssistantId((id) => (list.some((a) => a.id === id) ? id : list[0]?.id || ""));
    }, (exc) => setError(messageOf(exc)));
  }, [visible]);
  useEffect(() => () => stream.current?.abort(), []);

  async function follow(open, known = {}) {
    const controller = new AbortController();
    stream.current = controller;
    const openedAt = Date.now();
    const c = conv.current;
    if (known.runId && c.runs[known.runId]) c.runs[known.runId].live = { openedAt };
    try {
      await followRun(client, () => open(controller.signal), {
        signal: controller.signal,
        known,
        onEvent(name, data) {
          if (controller.signal.aborted) return;
          applyEvent(c, name, data);
          if (name === "thread.run.created") {
            c.runs[data.id].live.openedAt = openedAt;
            setSelectedRun(data.id);
          }
          redraw();
        },
        onConnection(state, attempt) {
          setConnection(state === "reconnecting" ? `Connection lost; resuming the stream (attempt ${attempt})…` : "");
        },
      });
    } catch (exc) {
      if (exc.name !== "AbortError") setError(messageOf(exc));
    } finally {
      if (stream.current === controller) stream.current = null;
      setConnection("");
      redraw();
    }
  }

  async function openThread(thread) {
    stream.current?.abort();
    setError("");
    try {
      const [messages, runs] = await Promise.all([
        client.all(`/threads/${thread.id}/messages`, { order: "asc" }),
        client.get(`/threads/${thread.id}/runs`, { order: "desc", limit: HISTORY_RUNS }).then((p) => p.data.reverse()),
      ]);
      const steps = {};
      await Promise.all(runs.map(async (r) => {
        steps[r.id] = await client.all(`/threads/${thread.id}/runs/${r.id}/steps`, { order: "asc" });
      }));
      conv.current = fromHistory(thread.id, messages, runs, steps);
      setSelectedRun(runs.at(-1)?.id || null);
      if (runs.at(-1)?.assistant_id && assistants.some((a) => a.id === runs.at(-1).assistant_id)) {
        setAssistantId(runs.at(-1).assistant_id);
      }
      redraw();
      const running = activeRun(conv.current);
      if (running && running.status !== "requires_action") {
        // A run still going (started here before a reload, or elsewhere): follow it from its first event.
        follow((signal) => client.open("GET", `/threads/${thread.id}/runs/${running.id}/events`, undefined, { signal }),
          { threadId: thread.id, runId: running.id });
      }
    } catch (exc) {
      setError(messageOf(exc));
    }
  }

  function newThread() {
    stream.current?.abort();
    conv.current = emptyConversation();
    setSelectedRun(null);
    setError("");
    redraw();
    document.getElementById("message")?.focus();
  }

  async function deleteThread(thread) {
    if (!window.confirm(`Delete the thread "${threadTitle(thread)}" (${thread.id})?`)) return;
    try {
      await client.del(`/threads/${thread.id}`);
      setThreads((list) => list.filter((t) => t.id !== thread.id));
      if (conv.current.threadId === thread.id) newThread();
    } catch (exc) {
      setError(messageOf(exc));
    }
  }

  async function send(text, files) {
    setError("");
    if (!assistantId) {
      setError("Choose an assistant to answer (create one under Assistants).");
      return false;
    }
    const c = conv.current;
    try {
      let threadId = c.threadId;
      if (!threadId) {
        const t = await client.post("/threads", { metadata: { title: text.trim().slice(0, 60) || "Files" } });
        threadId = t.id;
        c.threadId = t.id;
        setThreads((list) => [t, ...list]);
      }
      const body = { role: "user", content: text.trim() || "(see the attached files)" };
      if (client.shape === "v2") {
        body.attachments = files.map((f) => ({ file_id: f.id, tools: Object.keys(f.tools)
          .filter((k) => f.tools[k]).map((type) => ({ type })) }));
      } else {
        body.file_ids = files.map((f) => f.id);
      }
      const message = await client.post(`/threads/${threadId}/messages`, body);
      applyEvent(c, "thread.message.created", message);
      redraw();
      follow((signal) => client.open("POST", `/threads/${threadId}/runs`, { assistant_id: assistantId, stream: true },
        { signal }));
      return true;
    } catch (exc) {
      setError(messageOf(exc));
      return false;
    }
  }

  async function cancel() {
    const run = activeRun(conv.current);
    if (!run) return;
    try {
      const cancelled = await client.post(`/threads/${run.thread_id}/runs/${run.id}/cancel`);
      applyEvent(conv.current, `thread.run.${cancelled.status}`, cancelled);
      redraw();
    } catch (exc) {
      setError(messageOf(exc));
    }
  }

  async function submitOutputs(run, toolOutputs) {
    setError("");
    await follow((signal) => client.open("POST", `/threads/${run.thread_id}/runs/${run.id}/submit_tool_outputs`,
      { tool_outputs: toolOutputs, stream: true }, { signal }), { threadId: run.thread_id, runId: run.id });
  }

  const c = conv.current;
  const active = activeRun(c);
  const shownRun = selectedRun && c.runs[selectedRun] ? selectedRun : c.items.findLast((i) => i.kind === "run")?.id;
  const open = threads.find((t) => t.id === c.threadId);
  return html`
    <div class="columns three">
      <section class="list-pane" aria-labelledby="threads-heading">
        <h2 id="threads-heading">Threads</h2>
        <button type="button" class="primary" onClick=${newThread}>New thread</button>
        <ul class="items">
          ${threads.map((t) => html`
            <li key=${t.id} class="with-action">
              <button type="button" class="item" aria-current=${t.id === c.threadId ? "true" : undefined}
                onClick=${() => openThread(t)}>
                <span class="title">${threadTitle(t)}</span>
                <span class="meta">${when(t.created_at)} · ${t.id}</span>
              </button>
              <button type="button" class="small" aria-label=${`Delete thread ${threadTitle(t)} (${t.id})`}
                onClick=${() => deleteThread(t)}>Delete</button>
            </li>`)}
        </ul>
        ${hasMore && html`<button type="button" onClick=${() => loadThreads(threads.at(-1)?.id)}>Load more</button>`}
      </section>
      <section class="conversation-pane" aria-labelledby="conversation-heading">
        <div class="conversation-head">
          <h2 id="conversation-heading">${c.threadId ? (open ? threadTitle(open) : c.threadId) : "New thread"}</h2>
          ${c.threadId && html`<span class="meta">${c.threadId}</span>`}
          <label for="assistant-choice">Assistant</label>
          <select id="assistant-choice" value=${assistantId} onChange=${(e) => setAssistantId(e.currentTarget.value)}>
            ${assistants.length === 0 && html`<option value="">No assistants yet</option>`}
            ${assistants.map((a) => html`<option key=${a.id} value=${a.id}>${a.name || "Untitled"} (${a.id})</option>`)}
          </select>
        </div>
        <${ConversationLog} client=${client} conv=${c} selectedRun=${shownRun} onSelectRun=${setSelectedRun}
          onError=${(exc) => setError(messageOf(exc))} />
        <p role="status" class="connection">${connection}</p>
        ${c.error && html`<p class="error" role="alert">${c.error}</p>`}
        ${error && html`<p class="error" role="alert">${error}</p>`}
        ${active?.status === "requires_action" && !stream.current && html`
          <${ToolOutputs} key=${active.id} run=${active} onSubmit=${(outputs) => submitOutputs(active, outputs)} />`}
        <${Composer} client=${client} active=${active} onSend=${send} onCancel=${cancel} />
      </section>
      <aside class="run-pane" aria-labelledby="run-heading">
        <h2 id="run-heading">Run details</h2>
        <${RunPanel} conv=${c} runId=${shownRun} />
      </aside>
    </div>`;
}
