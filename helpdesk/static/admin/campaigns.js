// The campaigns page (admins): create a draft from a list of customer ids, start, pause, resume or
// cancel it, and read per campaign who got the message, why the others did not, and what followed.
import { api, boot, button, failed, field, fill, flash, formatTime, h, onLanguageChange, t } from "/admin/static/common.js";

const KNOWN = {
  "audience is empty": "campaigns.error.empty",
  "unknown customer id": "campaigns.error.unknown_customer",
  "unknown ZNS template": "campaigns.error.unknown_template",
  "only a": "campaigns.error.state",
  "already": "campaigns.error.state",
};
const STATUSES = ["pending", "sent", "delivered", "read", "failed", "skipped"];
// which steps each campaign state offers
const ACTIONS = { draft: ["start", "cancel"], sending: ["pause", "cancel"], paused: ["resume", "cancel"], done: [], cancelled: [] };
const body = document.getElementById("admin-body");
let campaigns = [];
let opened = null; // the campaign whose report is shown, as the API returned it
let notSent = []; // its first skipped and failed recipients, with the reason
let draft = { name: "", message: "", ids: "", template: "", rate: 30 }; // the form's values across re-renders

/** "12, 15 16\n17" -> [12, 15, 16, 17]; the first piece that is not a whole number is thrown. */
function parseIds(text) {
  const pieces = text.split(/[\s,;]+/).filter(Boolean);
  for (const piece of pieces) if (!/^\d+$/.test(piece)) throw new Error(piece);
  return pieces.map(Number);
}

function createForm() {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const message = h("textarea", { name: "message", required: true, maxlength: 2000, rows: 3 });
  const ids = h("textarea", { name: "customer_ids", required: true, rows: 2, inputmode: "numeric" });
  const template = h("input", { type: "text", name: "zns_template", maxlength: 40, autocomplete: "off" });
  const rate = h("input", { type: "number", name: "rate_per_minute", min: 1, max: 600, inputmode: "numeric" });
  name.value = draft.name;
  message.value = draft.message;
  ids.value = draft.ids;
  template.value = draft.template;
  rate.value = draft.rate;
  const keep = () => { draft = { name: name.value, message: message.value, ids: ids.value, template: template.value, rate: rate.value }; };
  for (const input of [name, message, ids, template, rate]) input.addEventListener("input", keep);
  const form = h("form", { class: "card admin-form", id: "campaign-form" },
    h("h2", { "data-i18n": "campaigns.create_title" }, t("campaigns.create_title")),
    field("campaigns.name", name), field("campaigns.message", message, "campaigns.message_hint"),
    field("campaigns.customer_ids", ids, "campaigns.customer_ids_hint"),
    field("campaigns.zns_template", template, "campaigns.zns_template_hint"), field("campaigns.rate", rate),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-i18n": "campaigns.create" }, t("campaigns.create"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let customerIds;
    try {
      customerIds = parseIds(ids.value);
    } catch (error) {
      flash(t("campaigns.ids_invalid", { value: error.message }), "error");
      return;
    }
    try {
      const created = await api("/api/campaigns", { method: "POST", body: {
        name: name.value.trim(), message: message.value, customer_ids: customerIds,
        zns_template: template.value.trim() || null, rate_per_minute: Number(rate.value) || 30 } });
      draft = { name: "", message: "", ids: "", template: "", rate: 30 };
      await load();
      flash(t("campaigns.created", { name: created.name, count: created.audience }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function statusBadge(status) {
  const on = status === "sending" || status === "done";
  return h("span", { class: `badge ${on ? "badge-on" : "badge-off"}`, "data-status": status }, t(`campaigns.status.${status}`));
}

function counts(campaign) {
  const by = campaign.counts.by_status;
  const cell = (key, value) => h("span", { class: "campaign-count" }, h("span", { class: "muted small" }, t(key)), " ", h("strong", {}, String(value)));
  return h("p", { class: "campaign-counts admin-wrap" },
    cell("campaigns.col.audience", campaign.audience), " · ",
    cell("campaigns.col.sent", (by.sent || 0) + (by.delivered || 0) + (by.read || 0)), " · ",
    cell("campaigns.col.skipped", by.skipped || 0), " · ", cell("campaigns.col.failed", by.failed || 0));
}

async function act(campaign, action) {
  try {
    await api(`/api/campaigns/${campaign.id}/${action}`, { method: "POST" });
    await load();
    flash(t(`campaigns.done.${action}`, { name: campaign.name }));
  } catch (error) {
    failed(error, KNOWN);
  }
}

async function openReport(campaign) {
  try {
    opened = { id: campaign.id };
    await load(); // the list's counts too, not only the report
    document.getElementById("campaign-report").scrollIntoView({ block: "start" });
  } catch (error) {
    failed(error, KNOWN);
  }
}

function campaignCard(campaign) {
  const actions = (ACTIONS[campaign.status] || []).map((action) => {
    const control = button(`campaigns.${action}`, { class: action === "cancel" ? "btn btn-danger" : "btn", "data-action": action });
    control.addEventListener("click", () => act(campaign, action));
    return control;
  });
  const report = button("campaigns.report", { "data-action": "report" });
  report.addEventListener("click", () => openReport(campaign));
  return h("li", { class: "card admin-item", "data-campaign": campaign.id },
    h("div", { class: "admin-item-head" }, h("strong", { class: "admin-wrap" }, campaign.name), statusBadge(campaign.status)),
    h("p", { class: "muted small admin-wrap" }, campaign.message),
    counts(campaign),
    h("p", { class: "muted small" }, t("campaigns.col.created"), " ", formatTime(campaign.created_at)),
    h("div", { class: "admin-actions" }, actions, report));
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(rate * 1000) / 10}%`;
}

function table(titleKey, rows) {
  return h("div", { class: "campaign-table" },
    h("h3", { "data-i18n": titleKey }, t(titleKey)),
    rows.length ? h("ul", { class: "campaign-rows" }, rows.map(([label, value]) =>
      h("li", {}, h("span", { class: "admin-wrap" }, label), h("strong", {}, String(value)))))
      : h("p", { class: "muted small" }, t("campaigns.none")));
}

function reportCard() {
  if (!opened) return null;
  const c = opened;
  const r = c.report;
  const refresh = button("campaigns.refresh");
  refresh.addEventListener("click", () => openReport(c));
  const reasonLabel = (code) => {
    const key = `campaigns.reason.${code}`;
    const text = t(key);
    return text === key ? code : text;
  };
  return h("section", { class: "card admin-form", id: "campaign-report" },
    h("div", { class: "admin-item-head" }, h("h2", {}, t("campaigns.report_title", { name: c.name })), statusBadge(c.status)),
    table("campaigns.by_status", STATUSES.map((s) => [t(`campaigns.recipient.${s}`), c.counts.by_status[s] || 0])),
    table("campaigns.by_reason", Object.entries(c.counts.by_reason).map(([code, n]) => [reasonLabel(code), n])),
    table("campaigns.by_channel", Object.entries(c.counts.by_channel).map(([channel, n]) => [channel, n])),
    table("campaigns.not_sent", notSent.map((r) => [t("campaigns.customer", { id: r.customer_id }),
      r.status === "failed" ? r.reason || "" : reasonLabel(r.reason)])),
    h("ul", { class: "campaign-rows", id: "campaign-outcomes" },
      h("li", {}, h("span", {}, t("campaigns.sent")), h("strong", {}, String(r.sent))),
      h("li", {}, h("span", {}, t("campaigns.replied", { days: r.reply_window_days })),
        h("strong", {}, t("campaigns.rate_of", { count: r.replied, rate: percent(r.reply_rate) }))),
      h("li", {}, h("span", {}, t("campaigns.ordered", { days: r.order_window_days })),
        h("strong", {}, t("campaigns.rate_of", { count: r.ordered, rate: percent(r.order_rate) })))),
    h("div", { class: "admin-actions" }, refresh));
}

function render() {
  const list = campaigns.length
    ? h("ul", { class: "admin-list", id: "campaign-list" }, campaigns.map(campaignCard))
    : h("p", { class: "muted", "data-i18n": "campaigns.empty" }, t("campaigns.empty"));
  fill(body, createForm(), reportCard(),
    h("section", { class: "admin-list-section" },
      h("h2", { "data-i18n": "campaigns.list_title" }, t("campaigns.list_title")), list));
}

async function load() {
  campaigns = (await api("/api/campaigns?limit=100")).data;
  if (opened) opened = campaigns.some((c) => c.id === opened.id) ? await api(`/api/campaigns/${opened.id}`) : null;
  if (opened) {
    const [skipped, failedOnes] = await Promise.all(["skipped", "failed"].map((status) =>
      api(`/api/campaigns/${opened.id}/recipients?status=${status}&limit=20`)));
    notSent = [...failedOnes.data, ...skipped.data];
  }
  render();
}

onLanguageChange(render);
if (boot.allowed) load().catch((error) => failed(error));
