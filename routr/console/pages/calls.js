// Calls in progress (live) and the recent ones the server remembers (events.callHistory).

import { data } from "../api.js";
import { clock, duration, fill, h, since, table } from "../dom.js";
import { showTrace } from "../ladder.js";
import { badge, follow } from "../live.js";

const RECENT = 50;

function traceButton(call) {
  return h("button", { type: "button", "aria-label": `Trace of the call from ${call.from} to ${call.to}`,
    onclick: () => showTrace(call.callId) }, "Trace");
}

export function render(main) {
  const head = h("span", {});
  const now = h("div", { class: "table-wrap" });
  const past = h("div", { class: "table-wrap" });
  let recent = [];

  const paintRecent = () => {
    const rows = recent.slice(0, RECENT).map((c) => h("tr", { "data-call": c.callId },
      h("td", {}, c.from), h("td", {}, c.to), h("td", {}, c.strategy || ""),
      h("td", {}, clock(c.started)),
      h("td", {}, c.answered ? duration(c.duration) : "not answered"),
      h("td", {}, [c.cause, c.status].filter(Boolean).join(" · ")),
      h("td", {}, traceButton(c))));
    fill(past, table("Recent calls", ["From", "To", "Strategy", "Started", "Talked", "End", ""], rows, "No calls have ended yet."));
  };

  // After a (re)connection the server's memory is the truth; between, ended calls arrive
  // as DELETED and are put first.
  const loadRecent = async () => {
    try {
      const items = await data("/calls", { itemsPerPage: 1000 });
      recent = items.filter((c) => c.state === "ended").sort((a, b) => (b.ended || 0) - (a.ended || 0));
      paintRecent();
    } catch {
      // the stream's reconnection shows the outage
    }
  };

  const live = follow("/calls", {
    key: (c) => c.callId,
    clocks: now,
    onReset: loadRecent,
    onDeleted(call) {
      recent = [call, ...recent.filter((c) => c.callId !== call.callId)];
      paintRecent();
    },
    render(items, state) {
      fill(head, badge(state));
      const rows = [...items.values()].sort((a, b) => a.started - b.started).map((c) => h("tr", { "data-call": c.callId },
        h("td", {}, c.from), h("td", {}, c.to), h("td", {}, c.strategy || ""),
        h("td", {}, h("span", { class: `state ${c.state === "answered" ? "ok" : "warn"}` }, c.state)),
        h("td", {}, clock(c.started)),
        h("td", {}, c.answered ? since(c.receivedAt - (c.duration || 0) * 1000) : ""),
        h("td", {}, traceButton(c))));
      fill(now, table("Calls in progress", ["From", "To", "Strategy", "State", "Started", "Talking for", ""], rows, "No calls in progress."));
    },
  });
  paintRecent();
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Calls ", head)),
    h("h2", {}, "In progress"), now, h("h2", {}, "Recent"), past);
  return () => live.close();
}
