// The canned responses page: the placeholders documented with a live preview, create and edit in one
// form, delete after a second click. The inbox fills the placeholders in when an agent inserts a reply.
import { api, fill, button, failed, field, flash, h, onLanguageChange, t } from "/admin/static/common.js";

const KNOWN = { "already exists": "admin.canned.error_exists", "unknown placeholder": "admin.canned.error_placeholder" };
const body = document.getElementById("admin-body");
let items = [];
let placeholders = [];
let editing = null; // the reply being edited, or null for a new one
let armed = null; // the id whose delete button waits for its confirming click

function preview(text) {
  return text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name) => {
    const key = `admin.canned.sample.${name}`;
    const sample = t(key);
    return sample === key ? whole : sample;
  });
}

function placeholderHelp() {
  return h("section", { class: "card admin-help", id: "placeholder-help" },
    h("h2", { "data-i18n": "admin.canned.placeholders_title" }, t("admin.canned.placeholders_title")),
    h("p", { class: "muted small" }, t("admin.canned.placeholders_text")),
    h("ul", { class: "admin-placeholders" }, placeholders.map((p) =>
      h("li", {}, h("code", {}, `{${p.name}}`), " — ", t(`admin.canned.placeholder.${p.name}`)))));
}

function editForm() {
  const shortcut = h("input", { type: "text", name: "shortcut", required: true, maxlength: 64, pattern: "[\\w\\-]+", autocomplete: "off" });
  const title = h("input", { type: "text", name: "title", required: true, maxlength: 200, autocomplete: "off" });
  const text = h("textarea", { name: "text", required: true, maxlength: 4096, rows: 4 });
  const locale = h("select", { name: "locale" },
    h("option", { value: "vi" }, "Tiếng Việt"), h("option", { value: "en" }, "English"));
  const shown = h("p", { class: "admin-preview", id: "canned-preview" });
  if (editing) {
    shortcut.value = editing.shortcut;
    title.value = editing.title;
    text.value = editing.text;
    locale.value = editing.locale;
  }
  const update = () => { shown.textContent = preview(text.value) || "—"; };
  text.addEventListener("input", update);
  update();
  const cancel = editing ? button("admin.cancel") : null;
  if (cancel) cancel.addEventListener("click", () => { editing = null; render(); });
  const form = h("form", { class: "card admin-form", id: "canned-form" },
    h("h2", {}, t(editing ? "admin.canned.edit_title" : "admin.canned.create_title", { shortcut: editing ? editing.shortcut : "" })),
    field("admin.canned.shortcut", shortcut, "admin.canned.shortcut_hint"), field("admin.canned.title_field", title),
    field("admin.canned.text", text), field("admin.canned.locale", locale),
    h("div", { class: "admin-field" }, h("span", { class: "admin-label" }, t("admin.canned.preview")), shown),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, t(editing ? "admin.save" : "admin.canned.create")), cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = { shortcut: shortcut.value.trim(), title: title.value.trim(), text: text.value, locale: locale.value };
    try {
      if (editing) await api(`/api/canned-responses/${editing.id}`, { method: "PATCH", body: values });
      else await api("/api/canned-responses", { method: "POST", body: values });
      const done = editing ? "admin.canned.saved" : "admin.canned.created";
      editing = null;
      await load();
      flash(t(done, { shortcut: values.shortcut }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function itemCard(item) {
  const edit = button("admin.edit");
  edit.addEventListener("click", () => {
    editing = item;
    render();
    document.getElementById("canned-form").scrollIntoView({ block: "start" });
  });
  const remove = button(armed === item.id ? "admin.canned.confirm_delete" : "admin.delete", { class: "btn btn-danger" });
  remove.addEventListener("click", async () => {
    if (armed !== item.id) {
      armed = item.id;
      render();
      return;
    }
    armed = null;
    try {
      await api(`/api/canned-responses/${item.id}`, { method: "DELETE" });
      await load();
      flash(t("admin.canned.deleted", { shortcut: item.shortcut }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return h("li", { class: "card admin-item", dataset: { shortcut: item.shortcut } },
    h("div", { class: "admin-item-head" }, h("strong", {}, `/${item.shortcut}`), h("span", { class: "badge" }, item.locale.toUpperCase())),
    h("div", { class: "canned-title" }, item.title),
    h("p", { class: "muted admin-wrap canned-body" }, item.text),
    h("div", { class: "admin-actions" }, edit, remove));
}

function render() {
  fill(body, placeholderHelp(), editForm(),
    h("section", { class: "admin-list-section" },
      h("h2", {}, t("admin.canned.list_title", { count: items.length })),
      items.length ? h("ul", { class: "admin-list", id: "canned-list" }, items.map(itemCard))
        : h("p", { class: "muted" }, t("admin.canned.empty"))));
}

async function load() {
  const [list, names] = await Promise.all([api("/api/canned-responses?limit=200"), api("/api/canned-responses/placeholders")]);
  items = list.data;
  placeholders = names;
  render();
}

onLanguageChange(render);
load().catch((error) => failed(error));
