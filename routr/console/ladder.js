// A call's SIP messages as a ladder: one column per address, one arrow per message.

import { authHeaders, data, url } from "./api.js";
import { explain, modal } from "./dialog.js";
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const COLUMN = 230;
const ROW = 30;
const TOP = 46;

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The <svg> ladder of ``messages`` ({time, direction, from, to, firstLine}). */
export function ladder(messages) {
  const columns = [];
  for (const m of messages) {
    for (const address of [m.from, m.to]) if (!columns.includes(address)) columns.push(address);
  }
  const width = Math.max(columns.length, 2) * COLUMN;
  const height = TOP + messages.length * ROW + 10;
  const x = (address) => columns.indexOf(address) * COLUMN + COLUMN / 2;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "ladder", role: "img",
    "aria-label": `${messages.length} messages between ${columns.join(", ")}` });
  for (const address of columns) {
    root.append(svg("text", { x: x(address), y: 16, class: "who", "text-anchor": "middle" }, address),
      svg("line", { x1: x(address), y1: 24, x2: x(address), y2: height, class: "life" }));
  }
  const start = messages.length ? Date.parse(messages[0].time) : 0;
  messages.forEach((m, i) => {
    const y = TOP + i * ROW;
    const [a, b] = [x(m.from), x(m.to)];
    const right = b >= a;
    const kind = /^SIP\/2\.0 [2]/.test(m.firstLine) ? "ok" : /^SIP\/2\.0 [3-6]/.test(m.firstLine) ? "bad" : "req";
    const label = m.firstLine.replace(/ SIP\/2\.0$/, "").replace(/^SIP\/2\.0 /, "");
    root.append(
      svg("line", { x1: a, y1: y, x2: b, y2: y, class: `arrow ${kind}` }),
      svg("path", { d: right ? `M${b} ${y} l-8 -4 v8 z` : `M${b} ${y} l8 -4 v8 z`, class: `head ${kind}` }),
      svg("text", { x: (a + b) / 2, y: y - 5, "text-anchor": "middle", class: "what" },
        label.length > 34 ? `${label.slice(0, 33)}…` : label),
      svg("text", { x: 4, y: y + 4, class: "when" }, `${((Date.parse(m.time) - start) / 1000).toFixed(3)}s`),
    );
  });
  return root;
}

async function download(callId) {
  const response = await fetch(url(`/calls/${encodeURIComponent(callId)}/trace`, { format: "pcap" }),
    { headers: authHeaders() });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `${callId}.pcap` });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(link.href);
}

/** A dialog with the call's ladder, every message in full, and a pcap download. */
export function showTrace(callId) {
  modal(`Trace of ${callId}`, () => {
    const body = h("div", { class: "trace" }, h("p", { class: "muted" }, "Loading…"));
    const error = h("p", { class: "error", role: "alert" });
    data(`/calls/${encodeURIComponent(callId)}/trace`).then((trace) => {
      const list = trace.messages.map((m, i) => h("details", {},
        h("summary", {}, `${i + 1}. ${m.direction} ${m.transport} ${m.from} → ${m.to}: ${m.firstLine}`),
        h("pre", {}, m.message)));
      body.replaceChildren(ladder(trace.messages), ...list,
        trace.dropped ? h("p", { class: "muted" }, `${trace.dropped} more messages were not kept.`) : "");
    }).catch((err) => { body.replaceChildren(); error.textContent = explain(err); });
    const pcap = h("button", { type: "button", onclick: () => download(callId).catch((err) => {
      error.textContent = `No pcap: ${err.message}`;
    }) }, "Download pcap");
    const close = h("button", { type: "button", onclick: (e) => e.target.closest("dialog").close() }, "Close");
    return [error, body, h("div", { class: "actions" }, pcap, close)];
  }, { wide: true });
}
