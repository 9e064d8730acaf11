// Live counts and a chart of the last minutes, from the sampler's /system/info polls.

import { duration, fill, h } from "../dom.js";
import { lineChart } from "../chart.js";
import { events, refresh, samples, WINDOW_MS } from "../sampler.js";

const MINUTE = 60000;

/** ``[[minuteStartMs, calls started in it], ...]`` over the window, from the server's calls. */
function callsPerMinute(calls, now) {
  const first = now - WINDOW_MS;
  const buckets = Array.from({ length: WINDOW_MS / MINUTE }, (_, i) => [first + i * MINUTE, 0]);
  for (const call of calls) {
    const i = Math.floor((call.started * 1000 - first) / MINUTE);
    if (i >= 0 && i < buckets.length) buckets[i][1] += 1;
  }
  return buckets;
}

function tile(label, value, note = "") {
  return h("div", { class: "tile" }, h("span", { class: "tile-label" }, label),
    h("strong", { class: "tile-value" }, value), note ? h("span", { class: "muted" }, note) : "");
}

export function render(main) {
  const tiles = h("div", { class: "tiles" });
  const chart = h("figure", { class: "chart-box" });
  const resources = h("div", { class: "tiles small" });

  const paint = () => {
    const last = samples.at(-1);
    if (!last) {
      fill(tiles, h("p", { class: "muted" }, "Reading the server…"));
      return;
    }
    const { counts, uptime, version } = last.info;
    const registered = last.registry.filter((r) => r.registered).length;
    const rps = last.requestsPerSecond;
    fill(tiles,
      tile("Registrations", counts.bindings ?? 0, "bindings in location"),
      tile("Calls in progress", counts.callsInProgress),
      tile("SIP requests/s", rps === null ? "…" : rps.toFixed(1)),
      tile("Gateways registered", `${registered} / ${last.registry.length}`),
      tile("Bans", counts.bans),
      tile("Uptime", duration(uptime), `routr ${version}`));
    fill(resources, ["Domain", "Agent", "Peer", "Gateway", "Number", "User"].map((k) =>
      h("a", { class: "tile link", href: `#/${k.toLowerCase()}s` }, h("span", { class: "tile-label" }, `${k}s`), h("strong", {}, counts[k] ?? 0))));
    const now = Date.now();
    const series = [
      { label: "Registrations", cls: "s1", points: samples.map((s) => [s.time, s.info.counts.bindings ?? 0]) },
      { label: "Calls in progress", cls: "s2", points: samples.map((s) => [s.time, s.info.counts.callsInProgress]) },
    ];
    const perMinute = callsPerMinute(last.calls, now);
    const words = series.map((s) => `${s.label} now ${s.points.at(-1)[1]}`).join(", ");
    const started = perMinute.reduce((n, [, v]) => n + v, 0);
    fill(chart,
      lineChart(series, now - WINDOW_MS, now, `Last 10 minutes: ${words}; ${started} calls started`,
        [{ cls: "s3", buckets: perMinute, width: MINUTE }]),
      h("figcaption", {},
        series.map((s) => h("span", { class: `legend ${s.cls}` }, s.label)),
        h("span", { class: "legend s3" }, "Calls started per minute"),
        h("span", { class: "muted" }, "· last 10 minutes")));
  };

  events.addEventListener("sample", paint);
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Dashboard")), tiles,
    h("h2", {}, "Registrations and calls"), chart, h("h2", {}, "Resources"), resources);
  paint();
  refresh();
  return () => events.removeEventListener("sample", paint);
}
