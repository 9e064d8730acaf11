// The table of one kind: search (the API's filter), paging, create, edit, delete.

import { ApiError, get, send } from "../api.js";
import { confirm, explain } from "../dialog.js";
import { announce, debounce, fill, h, refill, table } from "../dom.js";
import { openEditor } from "./editor.js";
import { KINDS } from "./kinds.js";

const PER_PAGE = 20;

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The API's JsonPath filter for a search term: any of the kind's fields contains it. */
export function searchFilter(paths, term) {
  if (!term) return "";
  const pattern = `/.*${escapeRegex(term)}.*/i`;
  return paths.map((p) => `@.${p} =~ ${pattern}`).join(" || ");
}

export function render(main, plural) {
  const def = { plural, ...KINDS[plural] };
  let page = 1;
  let term = "";
  const status = h("p", { class: "muted", role: "status" });
  const error = h("div", { class: "error", role: "alert" });
  const holder = h("div", { class: "table-wrap" });
  const prev = h("button", { type: "button" }, "Previous page");
  const next = h("button", { type: "button" }, "Next page");
  const searchId = `search-${plural}`;
  const search = h("input", { id: searchId, type: "search", placeholder: "name, reference, …", autocomplete: "off" });

  const edit = async (ref) => {
    try {
      const { data } = await get(`/${plural}/${encodeURIComponent(ref)}`);
      openEditor(def, data, () => load());
    } catch (err) {
      fill(error, h("p", {}, explain(err)));
    }
  };

  const remove = (item) => {
    const label = item.metadata.name || item.metadata.ref;
    confirm({
      title: `Delete ${def.singular}?`,
      text: `${def.kind} “${label}” (${item.metadata.ref}) will be deleted.`,
      label: `Delete ${def.singular}`,
      action: () => send("DELETE", `/${plural}/${encodeURIComponent(item.metadata.ref)}`),
      done: () => {
        announce(`${def.kind} ${label} deleted`);
        load();
      },
    });
  };

  async function load() {
    error.replaceChildren();
    try {
      const body = await get(`/${plural}`, { page, itemsPerPage: PER_PAGE, filter: searchFilter(def.search, term) });
      const { total } = body.meta;
      const pages = Math.max(1, Math.ceil(total / PER_PAGE));
      if (page > pages) {
        page = pages;
        return load();
      }
      const rows = body.data.map((item) => {
        const label = item.metadata.name || item.metadata.ref;
        return h("tr", { "data-ref": item.metadata.ref },
          def.columns.map((c) => h("td", {}, c.get(item) ?? "")),
          h("td", { class: "row-actions" },
            h("button", { type: "button", "aria-label": `Edit ${label}`, onclick: () => edit(item.metadata.ref) }, "Edit"),
            h("button", { type: "button", class: "danger", "aria-label": `Delete ${label}`, onclick: () => remove(item) }, "Delete")));
      });
      const headers = [...def.columns.map((c) => c.label), h("span", { class: "visually-hidden" }, "Actions")];
      refill(holder, table(def.title, headers, rows, term ? "Nothing matches the search." : `No ${plural} yet.`));
      const first = total ? (page - 1) * PER_PAGE + 1 : 0;
      status.textContent = `${first}–${Math.min(page * PER_PAGE, total)} of ${total} · page ${page} of ${pages}`;
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      fill(error, h("p", {}, explain(err)));
    }
  }

  prev.addEventListener("click", () => { page -= 1; load(); });
  next.addEventListener("click", () => { page += 1; load(); });
  search.addEventListener("input", debounce(() => { term = search.value.trim(); page = 1; load(); }, 250));

  fill(main,
    h("div", { class: "page-head" },
      h("h1", {}, def.title),
      h("button", { type: "button", class: "primary", onclick: () => openEditor(def, null, () => load()) }, `New ${def.singular}`)),
    h("div", { class: "toolbar" },
      h("label", { for: searchId }, `Search ${plural}`), search,
      h("button", { type: "button", onclick: () => load() }, "Refresh")),
    error, holder,
    h("nav", { class: "pager", "aria-label": "Pages" }, prev, status, next));
  load();
  return () => {};
}
