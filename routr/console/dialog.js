// Modal dialogs on the native <dialog>: it traps focus, closes on Escape and gives focus
// back to the button that opened it.

import { h } from "./dom.js";

/** A modal with ``title``; ``build(dialog)`` gives its content. Removed when closed. */
export function modal(title, build, { wide = false } = {}) {
  const heading = h("h2", { id: `dialog-${Date.now()}` }, title);
  const dialog = h("dialog", { class: wide ? "wide" : "", "aria-labelledby": heading.id }, heading);
  dialog.append(...[build(dialog)].flat());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Words for an API error: what kind of refusal, then the server's sentence. */
export function explain(err) {
  if (err.status === 409) {
    const lead = {
      "Found dependent objects": "It is still in use",
      "Unfulfilled dependencies": "Something it refers to does not exist",
      "Entity already exist": "It already exists",
    }[err.title] || err.title;
    return `${lead}: ${err.reason}`;
  }
  if (err.status === 0) return `No connection: ${err.reason}`;
  return err.reason;
}

/**
 * Ask before ``action`` (a promise). On failure the dialog stays open with the reason in
 * words; ``done()`` runs after success.
 */
export function confirm({ title, text, label, action, done }) {
  modal(title, (dialog) => {
    const error = h("p", { class: "error", role: "alert" });
    const go = h("button", { class: "danger", type: "button" }, label);
    go.addEventListener("click", async () => {
      go.disabled = true;
      error.textContent = "";
      try {
        await action();
        dialog.close();
        done?.();
      } catch (err) {
        error.textContent = explain(err);
        go.disabled = false;
      }
    });
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    return [h("p", {}, text), error, h("div", { class: "actions" }, cancel, go)];
  });
}
