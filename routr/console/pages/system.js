// Version, uptime, transports, data source, the running config (secrets masked by the
// server) and the reload button.

import { ApiError, data, send } from "../api.js";
import { explain } from "../dialog.js";
import { duration, fill, h, table } from "../dom.js";
import { dump } from "../yaml.js";

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function outcome(result) {
  const applied = result.applied || [];
  const restart = result.needsRestart || [];
  const counts = Object.entries(result.resources || {}).map(([k, n]) => `${n} ${k}`).join(", ");
  return h("div", {},
    h("p", {}, `Reloaded: ${counts || "no resources"}.`),
    h("p", {}, applied.length ? `Applied now: ${applied.join(", ")}.` : "No setting changed that applies at once."),
    restart.length ? h("p", { class: "warn" }, `Changed but only applied by a restart: ${restart.join(", ")}.`) : "");
}

export function render(main) {
  const info = h("section", { "aria-labelledby": "sys-info" });
  const config = h("pre", { class: "config", tabindex: "0", "aria-label": "Running configuration" });
  const result = h("div", { role: "status" });
  const error = h("div", { class: "error", role: "alert" });
  const reload = h("button", { type: "button", class: "primary" }, "Reload resources and config");

  async function load() {
    try {
      const [i, c] = await Promise.all([data("/system/info"), data("/system/config")]);
      fill(info, h("h2", { id: "sys-info" }, "Server"),
        facts([["Version", `${i.version} (API ${i.apiVersion})`], ["Node", i.node], ["Uptime", duration(i.uptime)],
          ["Data source", i.dataSource], ["Location store", i.location],
          ["SIP", `${i.sip.requests} requests, ${i.sip.responses} responses, ${i.sip.rejected} rejected, ${i.sip.dropped} dropped`]]),
        table("Transports", ["Protocol", "Address", "Port"], i.transports.map((t) => h("tr", {}, h("td", {}, t.protocol), h("td", {}, t.host), h("td", {}, String(t.port))))));
      config.textContent = dump(c);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      fill(error, h("p", {}, explain(err)));
    }
  }

  reload.addEventListener("click", async () => {
    reload.disabled = true;
    error.replaceChildren();
    result.replaceChildren();
    try {
      fill(result, outcome((await send("POST", "/system/reload")).data));
      load();
    } catch (err) {
      fill(error, h("p", {}, explain(err)));
    } finally {
      reload.disabled = false;
    }
  });

  fill(main, h("div", { class: "page-head" }, h("h1", {}, "System"), reload), result, error, info,
    h("h2", {}, "Configuration"), h("p", { class: "muted" }, "As running; secrets are masked by the server."), config);
  load();
  return () => {};
}
