// The UI library: Preact with hooks and htm's tagged templates (one vendored ES module, no build step).
import { useRef } from "../vendor/htm/preact-standalone.js";

export {
  html, render, useState, useEffect, useLayoutEffect, useRef, useMemo, useCallback,
} from "../vendor/htm/preact-standalone.js";

/** "250 ms", "1.2 s", "42 s" */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

let counter = 0;
/** A stable, unique id for label / description pairs. */
export function useId(prefix = "id") {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++counter}`;
  return ref.current;
}

/** An error from the API (or anything thrown) as the sentence to show. */
export function messageOf(exc) {
  return exc?.message || String(exc);
}
