// Samples of /system/info (and /registry, /calls) for the dashboard, taken while signed
// in, so that its chart has the minutes since sign-in even when the dashboard was just
// opened. The calls the server remembers give the calls of the minutes before that.

import { data } from "./api.js";

const EVERY_MS = 5000;
export const WINDOW_MS = 10 * 60 * 1000;

export const samples = [];
export const events = new EventTarget();
let timer = 0;
let running = false;

async function take() {
  try {
    const [info, registry, calls] = await Promise.all([
      data("/system/info"), data("/registry", { itemsPerPage: 1000 }), data("/calls", { itemsPerPage: 1000 }),
    ]);
    const now = Date.now();
    const last = samples.at(-1);
    const seconds = last ? (now - last.time) / 1000 : 0;
    const rate = (field) => (last && seconds > 0 ? Math.max(0, (info.sip[field] - last.info.sip[field]) / seconds) : null);
    samples.push({ time: now, info, registry, calls, requestsPerSecond: rate("requests") });
    while (samples.length && samples[0].time < now - WINDOW_MS) samples.shift();
    events.dispatchEvent(new Event("sample"));
  } catch {
    // the connection banner says so; the chart shows the gap
  }
  if (running) timer = setTimeout(take, EVERY_MS);
}

export function start() {
  if (running) return;
  running = true;
  take();
}

export function stop() {
  running = false;
  clearTimeout(timer);
  samples.length = 0;
}

/** Take one now (the dashboard opening wants fresh numbers). */
export function refresh() {
  if (!running) return;
  clearTimeout(timer);
  take();
}
