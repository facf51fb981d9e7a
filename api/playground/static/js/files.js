// Files behind the key: the page fetches their bytes itself and shows them through blob: URLs (an <img src> or
// a download link cannot send the Authorization header).

const blobs = new Map(); // file id -> Promise<object URL>
const names = new Map(); // file id -> Promise<filename>

export function fileUrl(client, fileId) {
  if (!blobs.has(fileId)) {
    const url = client
      .open("GET", `/files/${encodeURIComponent(fileId)}/content`)
      .then((r) => r.blob())
      .then((b) => URL.createObjectURL(b));
    url.catch(() => blobs.delete(fileId)); // a failure may be retried later
    blobs.set(fileId, url);
  }
  return blobs.get(fileId);
}

export function fileName(client, fileId) {
  if (!names.has(fileId)) {
    const name = client.get(`/files/${encodeURIComponent(fileId)}`).then((f) => f.filename);
    name.catch(() => names.delete(fileId));
    names.set(fileId, name);
  }
  return names.get(fileId);
}

/** Saves a File to the user's disk under its own name. */
export async function download(client, fileId) {
  const [url, name] = await Promise.all([fileUrl(client, fileId), fileName(client, fileId).catch(() => fileId)]);
  const a = document.createElement("a");
  a.href = url;
  a.download = name.split("/").pop();
  document.body.append(a);
  a.click();
  a.remove();
}

/** Wires the links and images of rendered model output (see markdown.js) to the Files they name. */
export function wireFiles(client, root, onError) {
  for (const a of root.querySelectorAll("a[data-file-id]")) {
    a.setAttribute("href", "#");
    a.addEventListener("click", (event) => {
      event.preventDefault();
      download(client, a.dataset.fileId).catch(onError);
    });
  }
  for (const img of root.querySelectorAll("img[data-file-id]")) {
    fileUrl(client, img.dataset.fileId).then((url) => { img.src = url; }, onError);
  }
}
