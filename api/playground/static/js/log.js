// Rendering a conversation: messages (model text as sanitised Markdown with citations as footnotes, images
// the code made, links to files it wrote) and tool calls (code and its output, file searches and their
// results, function calls and their outputs).

import { runPieces } from "./conversation.js";
import { fileName, fileUrl, wireFiles } from "./files.js";
import { renderText } from "./markdown.js";
import { html, useEffect, useLayoutEffect, useRef, useState } from "./ui.js";

function FileImage({ client, fileId, alt }) {
  const [src, setSrc] = useState(null);
  const [failed, setFailed] = useState("");
  useEffect(() => {
    fileUrl(client, fileId).then(setSrc, (exc) => setFailed(exc.message));
  }, [fileId]);
  if (failed) return html`<p class="error">Image ${fileId} could not be loaded: ${failed}</p>`;
  return src ? html`<img class="made" src=${src} alt=${alt} />` : html`<p class="meta">Loading image ${fileId}…</p>`;
}

function FileName({ client, fileId }) {
  const [name, setName] = useState(fileId);
  useEffect(() => {
    fileName(client, fileId).then(setName, () => {});
  }, [fileId]);
  return name;
}

function RichText({ client, text, messageId, onError }) {
  const box = useRef(null);
  const [footnotes, setFootnotes] = useState([]);
  const key = `${text?.value?.length}:${(text?.annotations || []).length}`;
  useLayoutEffect(() => {
    const { fragment, footnotes: notes } = renderText(text, messageId);
    box.current.replaceChildren(fragment);
    wireFiles(client, box.current, onError);
    setFootnotes(notes);
  }, [key]);
  const safe = String(messageId).replace(/[^A-Za-z0-9_-]/g, "");
  return html`
    <div class="markdown" ref=${box}></div>
    ${footnotes.length > 0 && html`
      <ol class="footnotes" aria-label="Sources">
        ${footnotes.map((n) => html`
          <li key=${n.n} id=${`note-${safe}-${n.n}`}>
            ${n.quote ? html`<blockquote>${n.quote}</blockquote>` : ""}
            <span class="meta">${n.name || html`<${FileName} client=${client} fileId=${n.fileId} />`}
              ${n.fileId ? ` (${n.fileId})` : ""}</span>
            ${" "}<a href=${`#ref-${safe}-${n.n}`} aria-label=${`Back to reference ${n.n}`}>↩</a>
          </li>`)}
      </ol>`}`;
}

function Attachments({ client, message }) {
  const ids = message.attachments ? message.attachments.map((a) => a.file_id) : message.file_ids || [];
  if (!ids.length) return "";
  return html`<ul class="attachments" aria-label="Attached files">
    ${ids.map((id) => html`<li key=${id}>📎 <${FileName} client=${client} fileId=${id} /></li>`)}</ul>`;
}

// While a message streams it is aria-busy: a screen reader announces it once, whole, rather than token by token.
export function Message({ client, message, onError }) {
  const mine = message.role === "user";
  const parts = message.content || [];
  return html`
    <article class=${`msg ${mine ? "user" : "assistant"}`} aria-label=${mine ? "You" : "Assistant"}
      aria-busy=${message.status === "in_progress" ? "true" : undefined}>
      <h3 class="who">${mine ? "You" : "Assistant"}</h3>
      ${parts.map((part, i) => {
        if (part.type === "text") {
          return mine
            ? html`<p key=${i} class="plain">${part.text?.value}</p>`
            : html`<${RichText} key=${i} client=${client} text=${part.text} messageId=${`${message.id}-${i}`}
                onError=${onError} />`;
        }
        if (part.type === "image_file") {
          return html`<${FileImage} key=${i} client=${client} fileId=${part.image_file.file_id}
            alt="An image made by the assistant" />`;
        }
        if (part.type === "image_url") return html`<p key=${i} class="meta">[image: ${part.image_url?.url}]</p>`;
        return "";
      })}
      ${message.status === "in_progress" && !mine ? html`<p class="meta typing">Writing…</p>` : ""}
      ${message.status === "incomplete" ? html`<p class="meta">This message is incomplete.</p>` : ""}
      <${Attachments} client=${client} message=${message} />
    </article>`;
}

function CodeCall({ client, call }) {
  const ci = call.code_interpreter || {};
  return html`
    <section class="tool code" aria-label="Code interpreter">
      <h3 class="who">Code interpreter</h3>
      <pre class="code"><code>${ci.input || ""}</code></pre>
      ${(ci.outputs || []).map((o, i) => (o.type === "logs"
        ? html`<div key=${i}><h4>Output</h4><pre class="logs">${o.logs}</pre></div>`
        : o.type === "image" ? html`<${FileImage} key=${i} client=${client} fileId=${o.image?.file_id}
            alt="A figure the code drew" />` : ""))}
    </section>`;
}

function SearchCall({ call }) {
  const fs = call.file_search || {};
  const results = fs.results || [];
  return html`
    <section class="tool search" aria-label="File search">
      <h3 class="who">${call.type === "retrieval" ? "Retrieval" : "File search"}</h3>
      ${fs.query ? html`<p>Query: <q>${fs.query}</q></p>` : ""}
      ${results.length ? html`<ol class="results">${results.map((r, i) => html`
        <li key=${i}>${r.file_name || r.file_id} <span class="meta">score ${Number(r.score).toFixed(3)}</span>
          ${(r.content || []).map((c) => html`<blockquote>${c.text}</blockquote>`)}</li>`)}</ol>`
        : html`<p class="meta">${call.type === "retrieval" ? "Searched the files." : "No results yet."}</p>`}
    </section>`;
}

function FunctionCall({ call, waiting }) {
  const fn = call.function || {};
  return html`
    <section class="tool function" aria-label=${`Function call ${fn.name}`}>
      <h3 class="who">Function call: <code>${fn.name}</code></h3>
      <h4>Arguments</h4>
      <pre class="code">${fn.arguments}</pre>
      ${fn.output !== null && fn.output !== undefined
        ? html`<h4>Output</h4><pre class="logs">${fn.output}</pre>`
        : html`<p class="meta">${waiting ? "Waiting for your output (below)." : "No output."}</p>`}
    </section>`;
}

function ToolCalls({ client, step, run }) {
  const waiting = new Set((run.required_action?.submit_tool_outputs?.tool_calls || []).map((c) => c.id));
  return (step.step_details?.tool_calls || []).map((call) => {
    if (call.type === "code_interpreter") return html`<${CodeCall} key=${call.id} client=${client} call=${call} />`;
    if (call.type === "file_search" || call.type === "retrieval") return html`<${SearchCall} key=${call.id} call=${call} />`;
    if (call.type === "function") return html`<${FunctionCall} key=${call.id} call=${call} waiting=${waiting.has(call.id)} />`;
    return "";
  });
}

const ENDINGS = {
  failed: (run) => `The run failed: ${run.last_error?.message || "no reason given"}${run.last_error?.code ? ` (${run.last_error.code})` : ""}.`,
  cancelled: () => "The run was cancelled.",
  expired: () => "The run expired.",
  incomplete: (run) => `The run ended incomplete${run.incomplete_details?.reason ? `: ${run.incomplete_details.reason}` : ""}.`,
};

function Run({ client, conv, runId, onSelect, selected, onError }) {
  const run = conv.runs[runId].run;
  const ending = ENDINGS[run.status];
  return html`
    <div class="run" data-run-id=${runId}>
      ${runPieces(conv, runId).map((p) => (p.kind === "message"
        ? html`<${Message} key=${p.message.id} client=${client} message=${p.message} onError=${onError} />`
        : html`<${ToolCalls} key=${p.step.id} client=${client} step=${p.step} run=${run} />`))}
      ${ending ? html`<p class=${run.status === "failed" ? "error" : "meta"}>${ending(run)}</p>` : ""}
      <button type="button" class="small link" aria-pressed=${selected ? "true" : "false"}
        onClick=${() => onSelect(runId)}>Run details (${run.status})</button>
    </div>`;
}

export function ConversationLog({ client, conv, selectedRun, onSelectRun, onError }) {
  const box = useRef(null);
  // Keep the newest text in view while it streams, unless the reader scrolled up.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 120) el.scrollTop = el.scrollHeight;
  });
  return html`
    <div class="log" role="log" aria-label="Conversation" aria-live="polite" tabindex="0" ref=${box}>
      ${conv.items.length === 0 ? html`<p class="meta">No messages yet.</p>` : ""}
      ${conv.items.map((item) => (item.kind === "message"
        ? html`<${Message} key=${item.id} client=${client} message=${conv.messages[item.id]} onError=${onError} />`
        : html`<${Run} key=${item.id} client=${client} conv=${conv} runId=${item.id} onError=${onError}
            selected=${item.id === selectedRun} onSelect=${onSelectRun} />`))}
    </div>`;
}
