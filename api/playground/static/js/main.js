// The playground's shell: sign in with an API key (kept in this tab's session storage), choose the API shape
// (v2 by default, per tab), and switch between the assistants and the threads.

import { createClient } from "./api.js";
import { AssistantsView } from "./assistants.js";
import { ThreadsView } from "./threads.js";
import { html, messageOf, render, useMemo, useState } from "./ui.js";

const KEY = "playground.key";
const SHAPE = "playground.shape";

function loadSession() {
  return { key: sessionStorage.getItem(KEY) || "", shape: sessionStorage.getItem(SHAPE) || "v2" };
}

function SignIn({ onSignIn }) {
  const [key, setKey] = useState("");
  const [shape, setShape] = useState(loadSession().shape);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      await createClient({ key: key.trim(), shape }).get("/assistants", { limit: 1 });
      onSignIn({ key: key.trim(), shape });
    } catch (exc) {
      setError(messageOf(exc));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <main id="main" class="signin">
      <h1>Assistants Playground</h1>
      <p>Build, try and debug assistants on this server. Sign in with an API key of your project (the key
        <code>make up</code> printed works); it is kept in this browser tab only.</p>
      <form onSubmit=${submit} aria-describedby=${error ? "signin-error" : undefined}>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck="false" required value=${key}
          onInput=${(e) => setKey(e.currentTarget.value)} />
        <label for="signin-shape">API shape</label>
        <select id="signin-shape" value=${shape} onChange=${(e) => setShape(e.currentTarget.value)}>
          <option value="v2">assistants=v2 (file_search, attachments)</option>
          <option value="v1">assistants=v1 (retrieval, file_ids)</option>
        </select>
        <button type="submit" class="primary" disabled=${busy}>Sign in</button>
        ${error && html`<p id="signin-error" class="error" role="alert">${error}</p>`}
      </form>
    </main>`;
}

function App() {
  const [session, setSession] = useState(loadSession);
  const [view, setView] = useState("threads");
  const client = useMemo(() => session.key && createClient(session), [session.key, session.shape]);

  function signIn(next) {
    sessionStorage.setItem(KEY, next.key);
    sessionStorage.setItem(SHAPE, next.shape);
    setSession(next);
    setView("assistants");
  }
  function signOut() {
    sessionStorage.removeItem(KEY);
    setSession({ key: "", shape: session.shape });
  }
  function setShape(shape) {
    sessionStorage.setItem(SHAPE, shape);
    setSession({ ...session, shape });
  }

  if (!client) return html`<${SignIn} onSignIn=${signIn} />`;
  const tab = (name, label) => html`
    <button type="button" class="tab" aria-current=${view === name ? "page" : undefined}
      onClick=${() => setView(name)}>${label}</button>`;
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <h1>Assistants Playground</h1>
      <nav aria-label="Sections">${tab("assistants", "Assistants")}${tab("threads", "Threads")}</nav>
      <label class="shape">API shape
        <select value=${session.shape} onChange=${(e) => setShape(e.currentTarget.value)}>
          <option value="v2">assistants=v2</option>
          <option value="v1">assistants=v1</option>
        </select>
      </label>
      <button type="button" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1">
      <div hidden=${view !== "assistants"}>
        <${AssistantsView} key=${session.shape} client=${client} />
      </div>
      <div hidden=${view !== "threads"}>
        <${ThreadsView} key=${session.shape} client=${client} visible=${view === "threads"} />
      </div>
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
