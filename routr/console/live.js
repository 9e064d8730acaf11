// A collection kept current by a watch stream: ADDED and MODIFIED put an item, DELETED
// takes it away. Rendering is batched per animation frame, so a burst of events is
// one repaint; between events a one-second tick moves only the clocks' text.

import { h, tickClocks } from "./dom.js";
import { watch } from "./stream.js";

export function follow(path, { key, render, onDeleted, onReset, params, clocks = null }) {
  const items = new Map();
  let scheduled = false;
  const repaint = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      render(items, state);
    });
  };
  let state = "connecting";
  const stream = watch(path, {
    params,
    onReset: () => {
      items.clear();
      onReset?.();
    },
    onEvent: (type, object) => {
      const k = key(object);
      if (type === "DELETED") {
        items.delete(k);
        onDeleted?.(object);
      } else {
        items.set(k, { ...object, receivedAt: Date.now() });
      }
      repaint();
    },
    onState: (next) => {
      state = next;
      repaint();
    },
  });
  const timer = clocks ? setInterval(() => tickClocks(clocks), 1000) : 0;
  repaint();
  return {
    items,
    repaint,
    close() {
      clearInterval(timer);
      stream.close();
    },
  };
}

/** "live" / "reconnecting…" beside a page's heading. */
export function badge(state) {
  const text = { live: "live", lost: "reconnecting…", connecting: "connecting…" }[state] || state;
  return h("span", { class: `badge ${state}` }, text);
}

/** When a countdown the server gave in seconds (``item[field]``) ends, in epoch ms. */
export function ends(item, field) {
  const value = item[field];
  return value === null || value === undefined ? null : item.receivedAt + value * 1000;
}
