// The API as the page calls it: same origin, the key from the sign-in form, the API shape chosen on the page.
// Every failure becomes an ApiError carrying OpenAI's error message, so the UI can show it where it happened.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `The API answered ${status}.`);
    this.status = status;
    this.type = error?.type ?? null;
    this.param = error?.param ?? null;
    this.code = error?.code ?? null;
  }
}

// A network failure (no answer at all) is an ApiError with status 0.
function unreachable(exc) {
  return new ApiError(0, { message: `Could not reach the API (${exc.message || exc}).`, type: "network_error" });
}

async function failure(response) {
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return new ApiError(response.status, error);
}

export function apiBase() {
  return new URL("../v1", document.baseURI).href.replace(/\/$/, "");
}

export function createClient({ key, shape }) {
  const base = apiBase();
  const headers = (extra = {}) => ({
    Authorization: `Bearer ${key}`,
    "OpenAI-Beta": `assistants=${shape}`,
    ...extra,
  });

  async function send(method, path, { body, query, signal, raw = false, extraHeaders } = {}) {
    const url = new URL(base + path);
    for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null) url.searchParams.set(k, v);
    const init = { method, headers: headers(extraHeaders), signal };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (exc) {
      if (exc.name === "AbortError") throw exc;
      throw unreachable(exc);
    }
    if (!response.ok) throw await failure(response);
    return raw ? response : response.json();
  }

  return {
    shape,
    get: (path, query, opts) => send("GET", path, { query, ...opts }),
    post: (path, body, opts) => send("POST", path, { body, ...opts }),
    del: (path) => send("DELETE", path),
    // A response whose body the caller reads itself (a stream, a file's bytes).
    open: (method, path, body, opts) => send(method, path, { body, raw: true, ...opts }),
    upload(file, purpose = "assistants") {
      const form = new FormData();
      form.append("purpose", purpose);
      form.append("file", file, file.name);
      return send("POST", "/files", { body: form });
    },
    // Every page of a list, following `after` (bounded: a playground shows what a person can read).
    async all(path, query = {}, limit = 500) {
      const out = [];
      let after;
      for (;;) {
        const page = await send("GET", path, { query: { limit: 100, ...query, after } });
        out.push(...page.data);
        if (!page.has_more || out.length >= limit || !page.data.length) return out;
        after = page.last_id;
      }
    },
  };
}
