// Attaching files and vector stores to an assistant: what is attached (with names and states), upload from the
// page, pick something uploaded before, remove.

import { fileName } from "./files.js";
import { html, messageOf, useEffect, useId, useState } from "./ui.js";

function FileLabel({ client, id }) {
  const [name, setName] = useState("");
  useEffect(() => {
    fileName(client, id).then(setName, () => setName("(deleted)"));
  }, [id]);
  return html`<span>${name || "…"} <span class="meta">${id}</span></span>`;
}

/** Uploads the chosen files one by one; returns their ids. */
async function uploadAll(client, fileList, setBusy) {
  const ids = [];
  for (const file of fileList) {
    setBusy(`Uploading ${file.name}…`);
    ids.push((await client.upload(file)).id);
  }
  return ids;
}

export function FilePicker({ client, legend, fileIds, onChange }) {
  const uploadId = useId("upload");
  const pickId = useId("pick");
  const [uploaded, setUploaded] = useState([]);
  const [busy, setBusy] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    client.get("/files", { purpose: "assistants", limit: 100 }).then((r) => setUploaded(r.data), () => {});
  }, []);

  async function upload(event) {
    const input = event.currentTarget;
    setError("");
    try {
      const ids = await uploadAll(client, input.files, setBusy);
      onChange([...fileIds, ...ids]);
    } catch (exc) {
      setError(messageOf(exc));
    } finally {
      setBusy("");
      input.value = "";
    }
  }

  return html`
    <fieldset>
      <legend>${legend}</legend>
      ${fileIds.length ? html`<ul class="attached">${fileIds.map((id) => html`
        <li key=${id}><${FileLabel} client=${client} id=${id} />
          <button type="button" class="small" aria-label=${`Remove file ${id}`}
            onClick=${() => onChange(fileIds.filter((f) => f !== id))}>Remove</button></li>`)}</ul>`
        : html`<p class="meta">No files.</p>`}
      <div class="row">
        <label for=${uploadId}>Upload files</label>
        <input id=${uploadId} type="file" multiple onChange=${upload} disabled=${!!busy} />
      </div>
      <div class="row">
        <label for=${pickId}>Add an uploaded file</label>
        <select id=${pickId} value="" onChange=${(e) => {
          const id = e.currentTarget.value;
          if (id && !fileIds.includes(id)) onChange([...fileIds, id]);
          e.currentTarget.value = "";
        }}>
          <option value="">Choose…</option>
          ${uploaded.filter((f) => !fileIds.includes(f.id)).map((f) => html`
            <option key=${f.id} value=${f.id}>${f.filename} (${f.id})</option>`)}
        </select>
      </div>
      ${busy && html`<p role="status">${busy}</p>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
    </fieldset>`;
}

function StoreLabel({ store }) {
  const counts = store.file_counts || {};
  return html`<span>${store.name || "Unnamed store"} <span class="meta">${store.id}</span>
    <span class="badge">${store.status}: ${counts.completed ?? 0} of ${counts.total ?? 0} files ready${
      counts.failed ? `, ${counts.failed} failed` : ""}</span></span>`;
}

export function VectorStorePicker({ client, storeIds, onChange, newStoreName }) {
  const uploadId = useId("upload");
  const pickId = useId("pick");
  const [stores, setStores] = useState({});
  const [all, setAll] = useState([]);
  const [busy, setBusy] = useState("");
  const [error, setError] = useState("");

  useEffect(() => {
    client.get("/vector_stores", { limit: 100 }).then((r) => setAll(r.data), () => {});
  }, []);
  // Each attached store, refreshed while its files are still being indexed.
  useEffect(() => {
    let stop = false;
    let timer;
    async function refresh() {
      const fresh = {};
      for (const id of storeIds) {
        try {
          fresh[id] = await client.get(`/vector_stores/${id}`);
        } catch (exc) {
          fresh[id] = { id, name: "(unavailable)", status: messageOf(exc), file_counts: {} };
        }
      }
      if (stop) return;
      setStores(fresh);
      if (Object.values(fresh).some((s) => s.status === "in_progress")) timer = setTimeout(refresh, 1000);
    }
    refresh();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [storeIds.join(",")]);

  async function upload(event) {
    const input = event.currentTarget;
    setError("");
    try {
      const fileIds = await uploadAll(client, input.files, setBusy);
      setBusy("Creating a vector store…");
      const store = await client.post("/vector_stores", { name: newStoreName, file_ids: fileIds });
      onChange([...storeIds, store.id]);
    } catch (exc) {
      setError(messageOf(exc));
    } finally {
      setBusy("");
      input.value = "";
    }
  }

  return html`
    <fieldset>
      <legend>File search: vector stores</legend>
      ${storeIds.length ? html`<ul class="attached">${storeIds.map((id) => html`
        <li key=${id}>${stores[id] ? html`<${StoreLabel} store=${stores[id]} />` : id}
          <button type="button" class="small" aria-label=${`Remove vector store ${id}`}
            onClick=${() => onChange(storeIds.filter((s) => s !== id))}>Remove</button></li>`)}</ul>`
        : html`<p class="meta">No vector stores.</p>`}
      <div class="row">
        <label for=${uploadId}>Upload files into a new vector store</label>
        <input id=${uploadId} type="file" multiple onChange=${upload} disabled=${!!busy} />
      </div>
      <div class="row">
        <label for=${pickId}>Attach a vector store</label>
        <select id=${pickId} value="" onChange=${(e) => {
          const id = e.currentTarget.value;
          if (id && !storeIds.includes(id)) onChange([...storeIds, id]);
          e.currentTarget.value = "";
        }}>
          <option value="">Choose…</option>
          ${all.filter((s) => !storeIds.includes(s.id)).map((s) => html`
            <option key=${s.id} value=${s.id}>${s.name || "Unnamed store"} (${s.id})</option>`)}
        </select>
      </div>
      ${busy && html`<p role="status">${busy}</p>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
    </fieldset>`;
}
