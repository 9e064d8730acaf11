// Who is registered where, live from the location watch stream.

import { send } from "../api.js";
import { confirm } from "../dialog.js";
import { announce, fill, h, refill, table, until } from "../dom.js";
import { badge, ends, follow } from "../live.js";

export function render(main) {
  const head = h("span", {});
  const holder = h("div", { class: "table-wrap" });
  const evict = (aor) => confirm({
    title: "Evict bindings?",
    text: `Every binding of ${aor} is removed; the device registers again at its next refresh.`,
    label: "Evict",
    action: () => send("DELETE", `/location/${encodeURIComponent(aor)}`),
    done: () => announce(`${aor} evicted`),
  });
  const live = follow("/location", {
    key: (b) => `${b.aor} ${b.contact}`,
    clocks: holder,
    render(items, state) {
      fill(head, badge(state));
      const rows = [...items.values()]
        .sort((a, b) => a.aor.localeCompare(b.aor))
        .map((b) => h("tr", { "data-aor": b.aor },
          h("td", {}, b.aor),
          h("td", { class: "wrap" }, b.contact),
          h("td", {}, b.transport),
          h("td", {}, b.source),
          h("td", {}, b.userAgent || ""),
          h("td", {}, until(ends(b, "expires"))),
          h("td", {}, b.kind ? `${b.kind} ${b.ref || ""}` : ""),
          h("td", { class: "row-actions" },
            h("button", { type: "button", class: "danger", "aria-label": `Evict ${b.aor}`, onclick: () => evict(b.aor) }, "Evict"))));
      refill(holder, table("Bindings", ["AOR", "Contact", "Transport", "Source", "User agent", "Expires in", "Owner", h("span", { class: "visually-hidden" }, "Actions")], rows, "No registrations."));
    },
  });
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Location ", head)),
    h("p", { class: "muted" }, "Registrations appear and expire here as they happen."), holder);
  return () => live.close();
}
