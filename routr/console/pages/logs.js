// The server's log, live: a level filter (asked of the server) and a pause that keeps
// what arrives meanwhile.

import { fill, h } from "../dom.js";
import { badge } from "../live.js";
import { watch } from "../stream.js";

const KEEP = 1000;

export function render(main) {
  const head = h("span", {});
  const list = h("ol", { class: "log", tabindex: "0", "aria-label": "Log records" });
  const level = h("select", { id: "log-level" }, ["debug", "info", "warning", "error"].map((l) => h("option", { value: l, selected: l === "info" }, l)));
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const waiting = h("span", { class: "muted", role: "status" });
  let paused = false;
  let held = [];
  let stream = null;

  const line = (r) => h("li", { class: `lvl-${r.level}` },
    h("time", {}, (r.time || "").slice(11, 23)), " ",
    h("span", { class: "level" }, r.level), " ",
    h("span", { class: "logger" }, r.logger), " ",
    h("span", { class: "msg" }, r.msg));

  const add = (records) => {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(...records.map(line));
    while (list.childElementCount > KEEP) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  };

  const open = () => {
    stream?.close();
    stream = watch("/system/logs", {
      query: "follow",
      params: { level: level.value, limit: 200 },
      onReset: () => { list.replaceChildren(); held = []; },
      onEvent: (_type, record) => {
        if (paused) {
          held.push(record);
          waiting.textContent = `${held.length} new while paused`;
        } else {
          add([record]);
        }
      },
      onState: (state) => fill(head, badge(state)),
    });
  };

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      add(held.slice(-KEEP));
      held = [];
      waiting.textContent = "";
    }
  });
  level.addEventListener("change", open);

  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Logs ", head)),
    h("div", { class: "toolbar" }, h("label", { for: "log-level" }, "Level at least"), level, pause, waiting),
    list);
  open();
  return () => stream?.close();
}
