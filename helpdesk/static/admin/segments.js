// The segments page: saved segments (edit, delete after a second click), and one form to build a
// segment from conditions (a kind, then that kind's fields, "exclude" to turn it around) with a live
// preview of how many customers it matches now and some of them. The server checks every condition
// and says which one it refuses and why; the page shows that in place of the preview.
import { api, ApiError, button, fill, failed, field, flash, h, onLanguageChange, reason, t, locale } from "/admin/static/common.js";

const KNOWN = { "already exists": "segments.error_exists" };
const PREVIEW_DELAY_MS = 350;
const CHANNELS = ["zalo", "zalo_oa", "zalo_bot", "facebook", "telegram", "webchat", "email", "zns"];
// each kind's fields: [name, type, options]
const KINDS = {
  bought: [["product", "text"], ["from_days_ago", "days"], ["to_days_ago", "days"]],
  last_order: [["from_days_ago", "days"], ["to_days_ago", "days"]],
  order_count: [["min", "count"], ["max", "count"]],
  total_spent: [["min", "money"], ["max", "money"]],
  open_complaint: [],
  nps: [["category", "select", ["promoter", "passive", "detractor"]]],
  csat: [["min", "stars"], ["max", "stars"]],
  channel: [["channel", "select", CHANNELS]],
  tag: [["tag", "text"]],
  opted_out: [],
};
const NUMBER_LIMITS = { days: [0, 3650], count: [0, 1000000], money: [0, 1e15], stars: [1, 5] };

const body = document.getElementById("admin-body");
let segments = [];
let editing = null; // the segment being edited, or null for a new one
let draft = blankDraft(); // what the form holds: {name, description, conditions: [{kind, not, values}]}
let armed = null; // the id whose delete button waits for its confirming click
let preview = { state: "idle" }; // idle | waiting | shown (data) | invalid (message)
let previewTimer = null;
let previewAsked = 0;

function blankDraft() {
  return { name: "", description: "", conditions: [{ kind: "bought", not: false, values: {} }] };
}

function draftOf(segment) {
  return {
    name: segment.name, description: segment.description || "",
    conditions: segment.definition.map(({ kind, not, ...values }) => ({ kind, not: Boolean(not), values })),
  };
}

/** The definition the API takes, from what the form holds (empty fields left out). */
function definition() {
  return draft.conditions.map((condition) => {
    const out = { kind: condition.kind };
    for (const [name, type] of KINDS[condition.kind]) {
      const raw = condition.values[name];
      if (raw === undefined || raw === null || String(raw).trim() === "") continue;
      out[name] = type === "text" || type === "select" ? String(raw).trim() : Number(raw);
    }
    if (condition.not) out.not = true;
    return out;
  });
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(runPreview, PREVIEW_DELAY_MS);
}

/** Why the server refused the definition, each reason with the condition it is about. */
function previewProblem(error) {
  if (!(error instanceof ApiError) || !Array.isArray(error.detail)) return reason(error);
  return error.detail.map((item) => {
    const [where, list, index] = item.loc || [];
    const about = where === "body" && list === "definition" && Number.isInteger(index);
    return about ? `${t("segments.condition_n", { n: index + 1 })}: ${item.msg}` : item.msg;
  }).join("; ");
}

async function runPreview() {
  const asked = ++previewAsked;
  if (!draft.conditions.length) {
    preview = { state: "idle" };
    renderPreview();
    return;
  }
  preview = { state: "waiting" };
  renderPreview();
  try {
    const data = await api("/api/segments/preview", { method: "POST", body: { definition: definition() } });
    if (asked !== previewAsked) return; // a newer preview is on its way
    preview = { state: "shown", data };
  } catch (error) {
    if (asked !== previewAsked) return;
    preview = { state: "invalid", message: previewProblem(error) };
  }
  renderPreview();
}

function formatDate(iso) {
  return iso ? new Date(iso).toLocaleDateString(locale(), { dateStyle: "short" }) : t("segments.no_order");
}

function previewBody() {
  if (preview.state === "waiting") return h("p", { class: "muted" }, t("segments.preview_wait"));
  if (preview.state === "invalid") return h("p", { class: "admin-error", id: "segment-preview-error" }, preview.message);
  if (preview.state !== "shown") return h("p", { class: "muted" }, t("segments.preview_idle"));
  const { count, sample } = preview.data;
  return [
    h("p", { class: "segment-count", id: "segment-count" }, t("segments.preview_count", { count })),
    sample.length ? h("ul", { class: "segment-sample", id: "segment-sample" }, sample.map((member) =>
      h("li", { dataset: { customer: member.id } },
        h("a", { href: `/inbox/customers/${member.id}` }, member.name || t("segments.no_name")),
        h("span", { class: "muted" }, member.phone || "—"),
        h("span", { class: "muted" }, member.channels.map((c) => t(`segments.channel.${c}`)).join(", ") || "—"),
        h("span", { class: "muted" }, `${t("segments.col.last_order")}: ${formatDate(member.last_order_at)}`))))
      : h("p", { class: "muted" }, t("segments.preview_empty")),
  ];
}

function renderPreview() {
  const box = document.getElementById("segment-preview");
  if (box) fill(box, h("h3", {}, t("segments.preview_title")), previewBody());
}

function numberInput(type, value) {
  const [min, max] = NUMBER_LIMITS[type];
  return h("input", { type: "number", inputmode: "numeric", min, max, step: 1, value: value ?? "" });
}

function conditionFields(condition) {
  return KINDS[condition.kind].map(([name, type, options]) => {
    let control;
    if (type === "select") {
      control = h("select", {}, options.map((option) => h("option", { value: option }, t(`segments.${name}.${option}`))));
      if (condition.values[name] === undefined) condition.values[name] = options[0];
      control.value = condition.values[name];
    } else if (type === "text") {
      control = h("input", { type: "text", maxlength: name === "tag" ? 64 : 200, autocomplete: "off", value: condition.values[name] ?? "" });
    } else {
      control = numberInput(type, condition.values[name]);
    }
    control.dataset.field = name;
    control.addEventListener("input", () => { condition.values[name] = control.value; });
    // a typed name is previewed once it is complete (on leaving the field): the server looks a product
    // it does not list for on every order's lines, too slow to do for each letter of a big shop
    control.addEventListener(type === "text" ? "change" : "input", schedulePreview);
    const hint = type === "days" && name === "to_days_ago" ? "segments.days_hint" : null;
    return field(`segments.field.${name}`, control, hint);
  });
}

function conditionRow(condition, index) {
  const kind = h("select", { "data-field": "kind" }, Object.keys(KINDS).map((k) => h("option", { value: k }, t(`segments.kind.${k}`))));
  kind.value = condition.kind;
  kind.addEventListener("change", () => {
    condition.kind = kind.value;
    condition.values = {};
    renderForm();
    schedulePreview();
  });
  const negate = h("input", { type: "checkbox", "data-field": "not" });
  negate.checked = condition.not;
  negate.addEventListener("change", () => { condition.not = negate.checked; schedulePreview(); });
  const remove = button("segments.remove_condition", { class: "btn btn-ghost" });
  remove.addEventListener("click", () => {
    draft.conditions.splice(index, 1);
    renderForm();
    schedulePreview();
  });
  return h("fieldset", { class: "segment-condition", dataset: { index } },
    h("legend", {}, t("segments.condition_n", { n: index + 1 })),
    field("segments.kind", kind),
    h("div", { class: "segment-fields" }, conditionFields(condition)),
    h("label", { class: "admin-check" }, negate, t("segments.not")),
    h("div", { class: "admin-actions" }, remove));
}

function editForm() {
  const name = h("input", { type: "text", id: "segment-name", required: true, maxlength: 200, autocomplete: "off", value: draft.name });
  name.addEventListener("input", () => { draft.name = name.value; });
  const description = h("textarea", { id: "segment-description", maxlength: 2000, rows: 2 });
  description.value = draft.description;
  description.addEventListener("input", () => { draft.description = description.value; });
  const add = button("segments.add_condition", { id: "segment-add-condition" });
  add.addEventListener("click", () => {
    draft.conditions.push({ kind: "bought", not: false, values: {} });
    renderForm();
    schedulePreview();
  });
  const cancel = editing ? button("admin.cancel") : null;
  if (cancel) cancel.addEventListener("click", () => { startEditing(null); });
  const form = h("form", { class: "card admin-form", id: "segment-form", novalidate: true },
    h("h2", {}, editing ? t("segments.edit_title", { name: editing.name }) : t("segments.create_title")),
    field("segments.name", name), field("segments.description", description),
    h("h3", {}, t("segments.conditions")),
    h("div", { class: "segment-conditions", id: "segment-conditions" }, draft.conditions.map(conditionRow)),
    h("div", { class: "admin-actions" }, add),
    h("section", { class: "segment-preview", id: "segment-preview", "aria-live": "polite" }),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary", id: "segment-save" }, t("segments.save")), cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = { name: draft.name.trim(), description: draft.description.trim() || null, definition: definition() };
    try {
      const saved = editing
        ? await api(`/api/segments/${editing.id}`, { method: "PUT", body: values })
        : await api("/api/segments", { method: "POST", body: values });
      const done = editing ? "segments.saved" : "segments.created";
      editing = null;
      draft = blankDraft();
      await load();
      flash(t(done, { name: saved.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function daysText(from, to) {
  if (from !== undefined && to !== undefined) return t("segments.summary.days_between", { from, to });
  if (from !== undefined) return t("segments.summary.days_at_least", { from });
  return t("segments.summary.days_within", { to });
}

function rangeText(min, max, format = String) {
  if (min !== undefined && max !== undefined) return `${format(min)}–${format(max)}`;
  return min !== undefined ? `≥ ${format(min)}` : `≤ ${format(max)}`;
}

/** One saved condition in words: "Đã mua: RC-18, 330–365 ngày trước". */
function summary(condition) {
  const { kind, not, ...values } = condition;
  const details = [];
  if (values.product) details.push(values.product);
  if (values.from_days_ago !== undefined || values.to_days_ago !== undefined) details.push(daysText(values.from_days_ago, values.to_days_ago));
  if (values.min !== undefined || values.max !== undefined) {
    details.push(rangeText(values.min, values.max, kind === "total_spent" ? (n) => Number(n).toLocaleString(locale()) : String));
  }
  if (values.category) details.push(t(`segments.category.${values.category}`));
  if (values.channel) details.push(t(`segments.channel.${values.channel}`));
  if (values.tag) details.push(`#${values.tag}`);
  const text = `${t(`segments.kind.${kind}`)}${details.length ? `: ${details.join(", ")}` : ""}`;
  return not ? `${t("segments.summary_not")} ${text}` : text;
}

function startEditing(segment) {
  editing = segment;
  draft = segment ? draftOf(segment) : blankDraft();
  render();
  schedulePreview();
  document.getElementById("segment-form").scrollIntoView({ block: "start" });
}

function itemCard(segment) {
  const edit = button("admin.edit");
  edit.addEventListener("click", () => startEditing(segment));
  const remove = button(armed === segment.id ? "segments.confirm_delete" : "admin.delete", { class: "btn btn-danger" });
  remove.addEventListener("click", async () => {
    if (armed !== segment.id) {
      armed = segment.id;
      render();
      return;
    }
    armed = null;
    try {
      await api(`/api/segments/${segment.id}`, { method: "DELETE" });
      if (editing && editing.id === segment.id) { editing = null; draft = blankDraft(); }
      await load();
      flash(t("segments.deleted", { name: segment.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return h("li", { class: "card admin-item", dataset: { segment: segment.id } },
    h("div", { class: "admin-item-head" }, h("strong", {}, segment.name),
      h("span", { class: "badge" }, t("segments.conditions_count", { count: segment.definition.length }))),
    segment.description ? h("p", { class: "muted admin-wrap" }, segment.description) : null,
    h("ul", { class: "segment-summary" }, segment.definition.map((c) => h("li", {}, summary(c)))),
    h("div", { class: "admin-actions" }, edit,
      h("a", { class: "btn", href: `/api/segments/${segment.id}/customers.csv?excel=true`, download: "" }, t("segments.download_csv")),
      // the campaigns page opens with this segment chosen as the audience
      h("a", { class: "btn", href: `/admin/campaigns?segment=${segment.id}`, "data-action": "campaign" }, t("segments.send_campaign")),
      remove));
}

function renderForm() {
  const old = document.getElementById("segment-form");
  const form = editForm();
  if (old) old.replaceWith(form);
  renderPreview();
}

function render() {
  fill(body, editForm(),
    h("section", { class: "admin-list-section" },
      h("h2", {}, t("segments.list_title", { count: segments.length })),
      segments.length ? h("ul", { class: "admin-list", id: "segment-list" }, segments.map(itemCard))
        : h("p", { class: "muted" }, t("segments.empty"))));
  renderPreview();
}

async function load() {
  segments = (await api("/api/segments")).data;
  render();
}

// the page's own few styles, beside the admin pages' shared ones
document.head.append(h("link", { rel: "stylesheet", href: "/admin/static/segments.css" }));
onLanguageChange(render);
load().then(schedulePreview).catch((error) => failed(error));
