// The message box: text, files attached from the page (uploaded as soon as they are chosen), Send and Cancel.
// What was typed is cleared only once the API has stored the message: a refused message stays in the box.

import { html, messageOf, useState } from "./ui.js";

// The file types file_search can read (OpenAI's list); other files are offered to code_interpreter only.
const SEARCHABLE = /\.(c|cpp|cs|css|doc|docx|go|html|java|js|json|md|pdf|php|pptx|py|rb|sh|tex|ts|txt)$/i;

export function Composer({ client, active, onSend, onCancel }) {
  const [text, setText] = useState("");
  const [files, setFiles] = useState([]); // {key, name, id, status, error, tools: {code_interpreter, file_search}}
  const [sending, setSending] = useState(false);
  const uploading = files.some((f) => f.status === "uploading");
  const update = (key, patch) => setFiles((list) => list.map((f) => (f.key === key ? { ...f, ...patch } : f)));

  function attach(event) {
    const input = event.currentTarget;
    for (const file of [...input.files]) {
      const key = `${Date.now()}-${Math.random()}`;
      const entry = { key, name: file.name, id: null, status: "uploading", error: "",
        tools: { code_interpreter: true, file_search: SEARCHABLE.test(file.name) } };
      setFiles((list) => [...list, entry]);
      client.upload(file).then(
        (f) => update(key, { id: f.id, status: "ready" }),
        (exc) => update(key, { status: "error", error: messageOf(exc) }),
      );
    }
    input.value = "";
  }

  async function submit(event) {
    event?.preventDefault();
    const ready = files.filter((f) => f.status === "ready");
    if ((!text.trim() && !ready.length) || uploading || sending) return;
    setSending(true);
    try {
      if (await onSend(text, ready)) {
        setText("");
        setFiles([]);
      }
    } finally {
      setSending(false);
    }
  }

  function keys(event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
  }

  return html`
    <form class="composer" onSubmit=${submit}>
      <label for="message">Message</label>
      <textarea id="message" rows="3" value=${text} aria-describedby="message-hint"
        onInput=${(e) => setText(e.currentTarget.value)} onKeyDown=${keys}></textarea>
      <p id="message-hint" class="meta">Ctrl+Enter sends. Attached files go to the tools you tick.</p>
      ${files.length > 0 && html`
        <ul class="attached" aria-label="Files to attach">
          ${files.map((f) => html`
            <li key=${f.key}>
              <span>${f.name} <span class="meta">${f.status === "ready" ? f.id : f.status}</span></span>
              ${f.error && html`<span class="error" role="alert">${f.error}</span>`}
              ${client.shape === "v2" && html`
                <label class="check"><input type="checkbox" checked=${f.tools.code_interpreter}
                  onChange=${(e) => update(f.key, { tools: { ...f.tools, code_interpreter: e.currentTarget.checked } })} />
                  Code interpreter<span class="visually-hidden"> for ${f.name}</span></label>
                <label class="check"><input type="checkbox" checked=${f.tools.file_search}
                  onChange=${(e) => update(f.key, { tools: { ...f.tools, file_search: e.currentTarget.checked } })} />
                  File search<span class="visually-hidden"> for ${f.name}</span></label>`}
              <button type="button" class="small" onClick=${() => setFiles((l) => l.filter((x) => x.key !== f.key))}>
                Remove<span class="visually-hidden"> ${f.name}</span></button>
            </li>`)}
        </ul>`}
      <div class="row">
        <label for="attach">Attach files</label>
        <input id="attach" type="file" multiple onChange=${attach} />
      </div>
      <div class="actions">
        <button type="submit" class="primary" disabled=${uploading || sending}>Send</button>
        ${active && html`<button type="button" class="danger" onClick=${onCancel}
          disabled=${active.status === "cancelling"}>Cancel run</button>`}
      </div>
    </form>`;
}
