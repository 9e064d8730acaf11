// ndjson watch streams over fetch (EventSource cannot send the Authorization header).
// Each stream reconnects by itself with back-off; since a watch starts again with the
// current items as ADDED, a reconnect begins with onReset() and nothing is missed.

import { authHeaders, onReachable, reachable, session, unauthorized, url } from "./api.js";

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 15000;
// The server writes a blank line every 15 s; silence well past that is a dead connection
// that TCP may take minutes to notice.
const SILENCE_MS = 40000;

const streams = new Set();
export const status = new EventTarget();

// Waiting streams retry at once when the server is seen answering again (any request,
// such as the dashboard's poll) or the browser comes back online: no need to sit out
// the rest of a long back-off.
let wake = new EventTarget();
let wasReachable = true;
const wakeAll = () => {
  const waiting = wake;
  wake = new EventTarget();
  waiting.dispatchEvent(new Event("wake"));
};
onReachable((ok) => {
  if (ok && !wasReachable) wakeAll();
  wasReachable = ok;
});
window.addEventListener("online", wakeAll);

function pause(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake.addEventListener("wake", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** ``{state: "live"|"lost", retryIn}`` of the worst stream, for the connection banner. */
function publish() {
  let lost = null;
  for (const s of streams) {
    if (s.state === "lost" && (lost === null || s.retryAt < lost.retryAt)) lost = s;
  }
  const detail = lost ? { state: "lost", retryAt: lost.retryAt, reason: lost.reason } : { state: "live" };
  status.dispatchEvent(new CustomEvent("change", { detail }));
}

/**
 * Follow ``path?watch=true``. ``onReset()`` comes before each (re)connection's items,
 * ``onEvent(type, object)`` for each line. Returns ``{close()}``.
 */
export function watch(path, { params = {}, onReset = () => {}, onEvent, onState = () => {}, query = "watch" }) {
  const s = { state: "connecting", retryAt: 0, reason: "", closed: false, controller: null };
  streams.add(s);
  let delay = FIRST_RETRY_MS;

  const setState = (state, reason = "") => {
    s.state = state;
    s.reason = reason;
    onState(state, reason);
    publish();
  };

  async function run() {
    while (!s.closed) {
      const failure = await connect();
      if (s.closed) break;
      if (failure === "unauthorized") return;
      s.retryAt = Date.now() + delay;
      setState("lost", failure);
      await pause(delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  async function connect() {
    s.controller = new AbortController();
    let silence = 0;
    const alive = () => {
      clearTimeout(silence);
      silence = setTimeout(() => s.controller.abort(), SILENCE_MS);
    };
    const used = session.token();
    try {
      const response = await fetch(url(path, { ...params, [query]: "true" }), {
        headers: { Accept: "application/x-ndjson", ...authHeaders() },
        signal: s.controller.signal,
      });
      if (response.status === 401) {
        const body = await response.json().catch(() => null);
        unauthorized(body?.reason || "the token was refused", used);
        return "unauthorized";
      }
      if (!response.ok || !response.body) return `the server answered ${response.status}`;
      reachable(true);
      delay = FIRST_RETRY_MS;
      onReset();
      setState("live");
      alive();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "the server closed the stream";
        alive();
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end).trim();
          buffer = buffer.slice(end + 1);
          if (!line) continue;
          const event = JSON.parse(line);
          if (event.type === "ERROR") return event.object?.reason || "the stream reported an error";
          onEvent(event.type, event.object);
        }
      }
    } catch (err) {
      if (s.closed) return "closed";
      reachable(false);
      return "the connection to the server was lost";
    } finally {
      clearTimeout(silence);
    }
  }

  run();
  return {
    close() {
      s.closed = true;
      s.controller?.abort();
      streams.delete(s);
      publish();
    },
  };
}
