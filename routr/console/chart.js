// A small SVG line chart of a few series over a time window; no library needed for this.

const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 180;
const PAD = { left: 36, right: 10, top: 10, bottom: 22 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/**
 * ``series``: [{label, cls, points: [[timeMs, value], ...]}] drawn as lines, ``bars``:
 * [{cls, buckets: [[startMs, value], ...], width: ms}] drawn behind them, between ``from``
 * and ``to`` (ms). Returns the <svg>; ``label`` is what screen readers hear.
 */
export function lineChart(series, from, to, label, bars = []) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  const values = [...series.flatMap((s) => s.points), ...bars.flatMap((b) => b.buckets)].map((p) => p[1]);
  const max = niceMax(Math.max(0, ...values));
  const x = (t) => PAD.left + ((t - from) / (to - from)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  const minutes = Math.round((to - from) / 60000);
  for (let m = 0; m <= minutes; m += 2) {
    const t = to - m * 60000;
    root.append(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle", class: "axis" }, m === 0 ? "now" : `-${m} min`));
  }
  for (const b of bars) {
    for (const [start, v] of b.buckets) {
      if (!v) continue;
      const left = x(Math.max(from, start)) + 1;
      const right = x(Math.min(to, start + b.width)) - 1;
      root.append(svg("rect", { x: left, y: y(v), width: Math.max(1, right - left), height: y(0) - y(v), class: `bar ${b.cls}` }));
    }
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: `line ${s.cls}` }));
    const [lt, lv] = s.points.at(-1);
    root.append(svg("circle", { cx: x(lt), cy: y(lv), r: 3, class: `dot ${s.cls}` }));
  }
  return root;
}
