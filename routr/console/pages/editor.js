// Create or edit a resource, in a form or as YAML. The server validates; its 422
// problems are shown next to the field they name.

import { send } from "../api.js";
import { explain, modal } from "../dialog.js";
import { announce, h } from "../dom.js";
import { dump } from "../yaml.js";

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k];
  }
  o[keys.at(-1)] = value;
}

// Removes the key, then every parent left empty by it (an ACL with neither list).
function deletePath(obj, path) {
  const keys = path.split(".");
  const chain = [obj];
  for (const k of keys.slice(0, -1)) {
    const next = chain.at(-1)?.[k];
    if (typeof next !== "object" || next === null) return;
    chain.push(next);
  }
  delete chain.at(-1)[keys.at(-1)];
  for (let i = chain.length - 1; i > 0; i--) {
    if (Object.keys(chain[i]).length) break;
    delete chain[i - 1][keys[i - 1]];
  }
}

let counter = 0;

function input(field, value, editing) {
  const id = `f${++counter}`;
  const common = { id, name: field.path, "data-path": field.path, "aria-describedby": `${id}-hint ${id}-error` };
  let control;
  if (field.type === "select") {
    control = h("select", common, field.options.map((o) => h("option", { value: o, selected: o === value }, o)));
  } else if (field.type === "checkbox") {
    control = h("input", { ...common, type: "checkbox", checked: Boolean(value) });
  } else {
    const text = field.type === "list" ? (value || []).join(", ") : value ?? "";
    control = h("input", {
      ...common,
      type: field.type === "number" ? "number" : field.type === "password" ? "password" : "text",
      value: field.secret ? "" : String(text),
      min: field.min, max: field.max,
      autocomplete: field.secret ? "new-password" : "off",
      readonly: field.fixed && editing,
      "aria-required": field.required && !(field.secret && editing) ? "true" : null,
    });
  }
  const error = h("p", { id: `${id}-error`, class: "field-error", "data-error-for": field.path });
  return h("div", { class: field.type === "checkbox" ? "field check" : "field" },
    // the mark stays outside the label, so the field's name is its label alone
    h("span", { class: "label-row" }, h("label", { for: id }, field.label),
      field.required && !(field.secret && editing) ? h("span", { "aria-hidden": "true", title: "required" }, " *") : ""),
    control,
    h("small", { id: `${id}-hint` }, field.hint || ""),
    error);
}

function collect(form, def, base, editing) {
  const out = structuredClone(base);
  for (const field of def.fields) {
    const control = form.elements.namedItem(field.path);
    if (field.fixed && editing) continue;
    if (field.type === "checkbox") {
      setPath(out, field.path, control.checked);
      continue;
    }
    const text = control.value.trim();
    if (text === "") {
      deletePath(out, field.path);
    } else if (field.type === "list") {
      setPath(out, field.path, text.split(/[\s,]+/).filter(Boolean));
    } else if (field.type === "number") {
      setPath(out, field.path, Number.isNaN(Number(text)) ? text : Number(text));
    } else {
      setPath(out, field.path, text);
    }
  }
  return out;
}

/** The fields a problem's path belongs to: itself, its children, or its parent. */
function fieldsFor(def, path) {
  const exact = def.fields.filter((f) => f.path === path);
  if (exact.length) return exact;
  const children = def.fields.filter((f) => f.path.startsWith(path + "."));
  if (children.length) return children;
  return def.fields.filter((f) => path.startsWith(f.path + ".") || path.startsWith(f.path + "[")).slice(0, 1);
}

export function openEditor(def, resource, onSaved) {
  const editing = resource !== null;
  const base = editing ? resource : def.template();
  const title = editing ? `Edit ${def.singular} ${resource.metadata.name || resource.metadata.ref}` : `New ${def.singular}`;
  modal(title, (dialog) => {
    const general = h("div", { class: "error", role: "alert" });
    const form = h("form", { class: "grid-form", novalidate: true }, def.fields.map((f) => input(f, getPath(base, f.path), editing)));
    const yamlId = `y${++counter}`;
    const yamlText = h("textarea", { id: yamlId, rows: 18, spellcheck: "false", "aria-describedby": `${yamlId}-hint` });
    const yamlPanel = h("div", { class: "field", hidden: true },
      h("label", { for: yamlId }, "Manifest (YAML)"), yamlText,
      h("small", { id: `${yamlId}-hint` }, editing ? "Sent as written; a missing secret keeps the stored one." : "Sent as written; a list creates several."));
    let mode = "form";
    const tabForm = h("button", { type: "button", "aria-pressed": "true" }, "Form");
    const tabYaml = h("button", { type: "button", "aria-pressed": "false" }, "YAML");
    const show = (next) => {
      if (next === "yaml" && mode === "form") yamlText.value = dump(collect(form, def, base, editing));
      mode = next;
      form.hidden = mode !== "form";
      yamlPanel.hidden = mode !== "yaml";
      tabForm.setAttribute("aria-pressed", String(mode === "form"));
      tabYaml.setAttribute("aria-pressed", String(mode === "yaml"));
    };
    tabForm.addEventListener("click", () => show("form"));
    tabYaml.addEventListener("click", () => show("yaml"));

    const save = h("button", { type: "button", class: "primary" }, editing ? "Save" : "Create");
    const clearErrors = () => {
      general.replaceChildren();
      for (const p of dialog.querySelectorAll(".field-error")) p.textContent = "";
      for (const c of dialog.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
    };
    const showError = (err) => {
      const loose = [];
      for (const problem of err.problems) {
        const fields = mode === "form" ? fieldsFor(def, problem.path) : [];
        for (const field of fields) {
          const slot = dialog.querySelector(`[data-error-for="${field.path}"]`);
          slot.textContent = slot.textContent ? `${slot.textContent}; ${problem.problem}` : problem.problem;
          form.elements.namedItem(field.path).setAttribute("aria-invalid", "true");
        }
        if (!fields.length) {
          loose.push(`${problem.path || "resource"}: ${problem.problem}`);
        }
      }
      if (!err.problems.length) general.append(h("p", {}, explain(err)));
      else if (loose.length) general.append(h("ul", {}, loose.map((t) => h("li", {}, t))));
      else general.append(h("p", {}, "The server refused it: see the fields marked below."));
      dialog.querySelector("[aria-invalid]")?.focus();
    };
    const submit = async () => {
      clearErrors();
      save.disabled = true;
      const path = editing ? `/${def.plural}/${encodeURIComponent(resource.metadata.ref)}` : `/${def.plural}`;
      const body = mode === "form" ? { json: collect(form, def, base, editing) } : { yaml: yamlText.value };
      try {
        const answer = await send(editing ? "PUT" : "POST", path, body);
        dialog.close();
        announce(`${def.kind} ${editing ? "saved" : "created"}`);
        onSaved(answer.data);
      } catch (err) {
        showError(err);
      } finally {
        save.disabled = false;
      }
    };
    save.addEventListener("click", submit);
    form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    form.append(h("button", { type: "submit", hidden: true, tabindex: "-1" }, "Save"));
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    return [
      h("div", { class: "tabs", role: "group", "aria-label": "Edit as" }, tabForm, tabYaml),
      general, form, yamlPanel,
      h("div", { class: "actions" }, cancel, save),
    ];
  }, { wide: true });
}
