// A collection kept current by a watch stream: ADDED and MODIFIED put an item, DELETED
// takes it away. Rendering is batched per animation frame, so a burst of events is
// one repaint; a one-second tick keeps countdowns moving between events.

import { h } from "./dom.js";
import { watch } from "./stream.js";

export function follow(path, { key, render, onDeleted, onReset, params, tick = false }) {
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
  const timer = tick ? setInterval(repaint, 1000) : 0;
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

/** Seconds left of a countdown the server gave, counted down since it arrived. */
export function left(item, field) {
  const value = item[field];
  if (value === null || value === undefined) return null;
  return Math.max(0, value - (Date.now() - item.receivedAt) / 1000);
}
