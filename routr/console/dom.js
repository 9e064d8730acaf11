// Small helpers for building the page without a framework.

/** An element: h("button", {class: "x", onclick: fn, "aria-label": "..."}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value" || key === "checked") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything inside ``el``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a caption (read by screen readers), header and rows. */
export function table(caption, headers, rows, empty = "Nothing here yet.") {
  const body = rows.length
    ? rows
    : [h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, empty))];
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, body),
  );
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const hours = Math.floor(s / 3600);
  if (hours < 48) return `${hours} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A local time from seconds since the epoch (the server's clock). */
export function clock(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

export function dateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Run ``fn`` once input has paused, so typing in a search box is one request. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A polite live region's text: screen readers hear what changed. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = text;
}

/** A countdown to ``ms`` (epoch ms), kept moving by ``tickClocks``. */
export function until(ms) {
  return h("span", { "data-until": Math.round(ms) }, duration((ms - Date.now()) / 1000));
}

/** Time elapsed since ``ms`` (epoch ms), kept moving by ``tickClocks``. */
export function since(ms) {
  return h("span", { "data-since": Math.round(ms) }, duration((Date.now() - ms) / 1000));
}

// Only the clocks' text changes each second: rebuilding rows would take the keyboard
// focus away from a button the user is on.
export function tickClocks(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-until]")) {
    el.textContent = duration((Number(el.dataset.until) - now) / 1000);
  }
  for (const el of root.querySelectorAll("[data-since]")) {
    el.textContent = duration((now - Number(el.dataset.since)) / 1000);
  }
}

/**
 * ``fill`` that keeps the keyboard focus: a button focused before is focused again when
 * its replacement (same accessible label) is there.
 */
export function refill(el, ...children) {
  const active = document.activeElement;
  const label = el.contains(active) ? active.getAttribute("aria-label") : null;
  fill(el, ...children);
  if (label) {
    for (const candidate of el.querySelectorAll("[aria-label]")) {
      if (candidate.getAttribute("aria-label") === label) return candidate.focus();
    }
  }
  return el;
}
