// Addresses banned for floods or password guessing; lifting one gives it clean counts.

import { ApiError, get, send } from "../api.js";
import { confirm, explain } from "../dialog.js";
import { announce, duration, fill, h, table } from "../dom.js";

// Bans have no watch stream; they change seldom, so a slow poll is enough.
const POLL_MS = 5000;

export function render(main) {
  const holder = h("div", { class: "table-wrap" });
  const error = h("div", { class: "error", role: "alert" });
  let timer = 0;
  const lift = (ip) => confirm({
    title: "Lift the ban?",
    text: `${ip} may send requests again, with clean counts.`,
    label: "Lift ban",
    action: () => send("DELETE", `/bans/${encodeURIComponent(ip)}`),
    done: () => { announce(`ban on ${ip} lifted`); load(); },
  });
  async function load() {
    clearTimeout(timer);
    try {
      const { data } = await get("/bans", { itemsPerPage: 1000 });
      error.replaceChildren();
      const rows = data.map((b) => h("tr", {},
        h("td", {}, b.ip), h("td", {}, duration(b.secondsLeft)),
        h("td", { class: "row-actions" }, h("button", { type: "button", "aria-label": `Lift the ban on ${b.ip}`, onclick: () => lift(b.ip) }, "Lift"))));
      fill(holder, table("Bans", ["Address", "Time left", h("span", { class: "visually-hidden" }, "Actions")], rows, "No address is banned."));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      fill(error, h("p", {}, explain(err)));
    }
    timer = setTimeout(load, POLL_MS);
  }
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Bans"),
    h("button", { type: "button", onclick: () => load() }, "Refresh")), error, holder);
  load();
  return () => clearTimeout(timer);
}
