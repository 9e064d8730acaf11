// Sign in with a User's username and secret; only the token is kept.

import { login } from "../api.js";
import { explain } from "../dialog.js";
import { fill, h } from "../dom.js";

export function render(main, { notice, then }) {
  const error = h("div", { class: "error", role: "alert" }, notice ? h("p", {}, notice) : "");
  const user = h("input", { id: "login-user", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const go = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to routr"),
    error,
    h("div", { class: "field" }, h("label", { for: "login-user" }, "Username"), user),
    h("div", { class: "field" }, h("label", { for: "login-pass" }, "Secret"), pass),
    go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    go.disabled = true;
    error.replaceChildren();
    try {
      await login(user.value.trim(), pass.value);
      pass.value = "";
      then();
    } catch (err) {
      fill(error, h("p", {}, err.status === 401 ? "Wrong username or secret." : explain(err)));
      pass.select();
    } finally {
      go.disabled = false;
    }
  });
  fill(main, form);
  user.focus();
  return () => {};
}
