// Assistants: the list, and an editor for one (name, instructions, model, tools, files, vector stores,
// functions with a validated JSON schema), saved through the API in the page's shape.

import { FilePicker, VectorStorePicker } from "./pickers.js";
import { html, messageOf, useEffect, useId, useRef, useState } from "./ui.js";

const EXAMPLE_FUNCTION = JSON.stringify({
  name: "get_weather",
  description: "Get the current weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}, null, 2);

function formState(a, shape) {
  const tools = a?.tools || [];
  return {
    name: a?.name || "",
    instructions: a?.instructions || "",
    model: a?.model || "gpt-4o",
    codeInterpreter: tools.some((t) => t.type === "code_interpreter"),
    fileSearch: tools.some((t) => t.type === "file_search" || t.type === "retrieval"),
    functions: tools.filter((t) => t.type === "function")
      .map((t, i) => ({ key: `f${i}`, text: JSON.stringify(t.function, null, 2), errors: [] })),
    ciFiles: shape === "v2" ? a?.tool_resources?.code_interpreter?.file_ids || [] : [],
    storeIds: shape === "v2" ? a?.tool_resources?.file_search?.vector_store_ids || [] : [],
    fileIds: shape === "v1" ? a?.file_ids || [] : [],
  };
}

function FunctionEditor({ index, fn, onText, onRemove }) {
  const id = useId("fn");
  return html`
    <div class="function">
      <label for=${id}>Function ${index + 1} (JSON: name, description, parameters)</label>
      <textarea id=${id} class="code" rows="10" spellcheck="false" value=${fn.text}
        aria-invalid=${fn.errors.length ? "true" : "false"}
        aria-describedby=${fn.errors.length ? `${id}-errors` : undefined}
        onInput=${(e) => onText(e.currentTarget.value)}></textarea>
      ${fn.errors.length ? html`<ul id=${`${id}-errors`} class="error">
        ${fn.errors.map((e) => html`<li>${e}</li>`)}</ul>`
        : html`<p class="meta ok">Valid function definition.</p>`}
      <button type="button" class="small" onClick=${onRemove}>Remove function ${index + 1}</button>
    </div>`;
}

async function check(fn) {
  const { checkFunction } = await import("./schema.js");
  const { value, errors } = await checkFunction(fn.text);
  return { ...fn, value, errors };
}

export function AssistantForm({ client, assistant, onSaved, onDeleted }) {
  const shape = client.shape;
  const [form, setForm] = useState(() => formState(assistant, shape));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [triedSave, setTriedSave] = useState(false); // invalid functions are called out once Save was tried
  const formRef = useRef(null);
  const set = (patch) => setForm((f) => ({ ...f, ...patch }));
  const headingId = useId("editor");

  // Validate function definitions as they are typed (after a short pause).
  const timers = useRef({});
  function editFunction(key, text) {
    setForm((f) => ({ ...f, functions: f.functions.map((fn) => (fn.key === key ? { ...fn, text } : fn)) }));
    clearTimeout(timers.current[key]);
    timers.current[key] = setTimeout(async () => {
      const checked = await check({ key, text, errors: [] });
      setForm((f) => ({ ...f, functions: f.functions.map((fn) => (fn.key === key && fn.text === text ? checked : fn)) }));
    }, 300);
  }

  function body(functions) {
    const tools = [];
    if (form.codeInterpreter) tools.push({ type: "code_interpreter" });
    if (form.fileSearch) tools.push({ type: shape === "v2" ? "file_search" : "retrieval" });
    for (const fn of functions) tools.push({ type: "function", function: fn.value });
    const out = { name: form.name || null, instructions: form.instructions || null, model: form.model, tools };
    if (shape === "v2") {
      out.tool_resources = {
        code_interpreter: { file_ids: form.ciFiles },
        file_search: { vector_store_ids: form.storeIds },
      };
    } else {
      out.file_ids = form.fileIds;
    }
    return out;
  }

  async function save(event) {
    event.preventDefault();
    setError("");
    const functions = await Promise.all(form.functions.map(check));
    set({ functions });
    const bad = functions.findIndex((fn) => fn.errors.length);
    if (bad >= 0) {
      setTriedSave(true);
      formRef.current?.querySelectorAll(".function textarea")[bad]?.focus();
      return;
    }
    setBusy(true);
    try {
      const path = assistant ? `/assistants/${assistant.id}` : "/assistants";
      const saved = await client.post(path, body(functions));
      onSaved(saved);
    } catch (exc) {
      setError(messageOf(exc));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!window.confirm(`Delete the assistant ${assistant.name || assistant.id}?`)) return;
    try {
      await client.del(`/assistants/${assistant.id}`);
      onDeleted(assistant.id);
    } catch (exc) {
      setError(messageOf(exc));
    }
  }

  const invalid = form.functions.findIndex((fn) => fn.errors.length);
  return html`
    <form ref=${formRef} class="editor" onSubmit=${save} aria-labelledby=${headingId}>
      <h2 id=${headingId}>${assistant ? `Edit ${assistant.name || "assistant"}` : "New assistant"}</h2>
      ${assistant && html`<p class="meta">${assistant.id}</p>`}
      <label for="a-name">Name</label>
      <input id="a-name" value=${form.name} maxlength="256" onInput=${(e) => set({ name: e.currentTarget.value })} />
      <label for="a-instructions">Instructions</label>
      <textarea id="a-instructions" rows="5" value=${form.instructions}
        onInput=${(e) => set({ instructions: e.currentTarget.value })}></textarea>
      <label for="a-model">Model</label>
      <input id="a-model" required value=${form.model} onInput=${(e) => set({ model: e.currentTarget.value })} />
      <fieldset>
        <legend>Tools</legend>
        <label class="check"><input type="checkbox" checked=${form.codeInterpreter}
          onChange=${(e) => set({ codeInterpreter: e.currentTarget.checked })} /> Code interpreter</label>
        <label class="check"><input type="checkbox" checked=${form.fileSearch}
          onChange=${(e) => set({ fileSearch: e.currentTarget.checked })} />
          ${shape === "v2" ? " File search" : " Retrieval"}</label>
      </fieldset>
      ${shape === "v2" ? html`
        ${form.codeInterpreter && html`<${FilePicker} client=${client} legend="Code interpreter: files"
          fileIds=${form.ciFiles} onChange=${(ciFiles) => set({ ciFiles })} />`}
        ${form.fileSearch && html`<${VectorStorePicker} client=${client} storeIds=${form.storeIds}
          onChange=${(storeIds) => set({ storeIds })} newStoreName=${`${form.name || "Playground"} files`} />`}`
      : html`
        <${FilePicker} client=${client} legend="Files (code interpreter and retrieval)" fileIds=${form.fileIds}
          onChange=${(fileIds) => set({ fileIds })} />`}
      <fieldset>
        <legend>Functions</legend>
        ${form.functions.map((fn, i) => html`
          <${FunctionEditor} key=${fn.key} index=${i} fn=${fn} onText=${(text) => editFunction(fn.key, text)}
            onRemove=${() => set({ functions: form.functions.filter((f) => f.key !== fn.key) })} />`)}
        <button type="button" onClick=${() => set({
          functions: [...form.functions, { key: `f${Date.now()}`, text: EXAMPLE_FUNCTION, errors: [] }],
        })}>Add function</button>
      </fieldset>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${triedSave && invalid >= 0 && html`<p class="error" role="alert">
        Function ${invalid + 1} is not valid: fix it before saving.</p>`}
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>Save</button>
        ${assistant && html`<button type="button" class="danger" onClick=${remove}>Delete assistant</button>`}
      </div>
    </form>`;
}

export function AssistantsView({ client }) {
  const [assistants, setAssistants] = useState([]);
  const [hasMore, setHasMore] = useState(false);
  const [selected, setSelected] = useState("new");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");

  async function load(after) {
    try {
      const page = await client.get("/assistants", { limit: 50, after });
      setAssistants((list) => (after ? [...list, ...page.data] : page.data));
      setHasMore(page.has_more);
    } catch (exc) {
      setError(messageOf(exc));
    }
  }
  useEffect(() => { load(); }, []);

  const current = assistants.find((a) => a.id === selected) || null;
  return html`
    <div class="columns">
      <section class="list-pane" aria-labelledby="assistants-heading">
        <h2 id="assistants-heading">Assistants</h2>
        <button type="button" class="primary" onClick=${() => { setSelected("new"); setNotice(""); }}>New assistant</button>
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <ul class="items">
          ${assistants.map((a) => html`
            <li key=${a.id}>
              <button type="button" class="item" aria-current=${a.id === selected ? "true" : undefined}
                onClick=${() => { setSelected(a.id); setNotice(""); }}>
                <span class="title">${a.name || "Untitled assistant"}</span>
                <span class="meta">${a.model} · ${a.id}</span>
              </button>
            </li>`)}
        </ul>
        ${hasMore && html`<button type="button" onClick=${() => load(assistants.at(-1)?.id)}>Load more</button>`}
      </section>
      <section class="editor-pane" aria-label="Assistant editor">
        <p role="status" class="notice">${notice}</p>
        <${AssistantForm} key=${selected} client=${client} assistant=${current}
          onSaved=${(a) => {
            setAssistants((list) => [a, ...list.filter((x) => x.id !== a.id)]);
            setSelected(a.id);
            setNotice(`Saved ${a.name || "the assistant"} (${a.id}).`);
          }}
          onDeleted=${(id) => {
            setAssistants((list) => list.filter((x) => x.id !== id));
            setSelected("new");
            setNotice(`Deleted ${id}.`);
          }} />
      </section>
    </div>`;
}
