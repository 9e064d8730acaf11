// Outbound registrations to Gateways, live.

import { duration, fill, h, table, until } from "../dom.js";
import { badge, ends, follow } from "../live.js";

export function render(main) {
  const head = h("span", {});
  const holder = h("div", { class: "table-wrap" });
  const live = follow("/registry", {
    key: (r) => r.ref,
    clocks: holder,
    render(items, state) {
      fill(head, badge(state));
      const rows = [...items.values()].map((r) => h("tr", {},
        h("td", {}, r.name),
        h("td", {}, r.registrar),
        h("td", {}, r.username || ""),
        h("td", {}, h("span", { class: `state ${r.registered ? "ok" : "bad"}` }, r.state)),
        h("td", {}, r.lastResponse || ""),
        h("td", {}, r.registeredSecondsAgo === null ? "" : `${duration(r.registeredSecondsAgo)} ago`),
        h("td", {}, r.nextAttemptIn === null ? "" : until(ends(r, "nextAttemptIn"))),
        h("td", {}, String(r.failures ?? 0))));
      fill(holder, table("Gateway registrations", ["Gateway", "Registrar", "Username", "State", "Last response", "Registered", "Next attempt in", "Failures"], rows, "No Gateway registers (sendRegister) yet."));
    },
  });
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Registry ", head)), holder);
  return () => live.close();
}
