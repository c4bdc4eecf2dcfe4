// The campaigns page (admins): create a draft for a saved segment's members (counted before creating)
// or a list of customer ids, start, pause, resume or cancel it, and read per campaign who got the
// message, why the others did not, and what followed. ?segment=ID opens the form with that segment chosen.
import { api, boot, button, failed, field, fill, flash, formatTime, h, onLanguageChange, t } from "/admin/static/common.js";

const KNOWN = {
  "unknown segment": "campaigns.error.unknown_segment",
  "matches no customer": "campaigns.error.segment_empty",
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
let segments = []; // the saved segments, for the audience select and the segment's name on a campaign
const previews = new Map(); // segment id -> its member count now (or an Error), fetched when chosen
const blankDraft = (segment = "") => ({ name: "", message: "", ids: "", segment, template: "", rate: 30 });
// the form's values across re-renders; ``segment`` is the chosen segment's id ("" = a list of ids)
let draft = blankDraft(new URLSearchParams(window.location.search).get("segment") || "");

/** "12, 15 16\n17" -> [12, 15, 16, 17]; the first piece that is not a whole number is thrown. */
function parseIds(text) {
  const pieces = text.split(/[\s,;]+/).filter(Boolean);
  for (const piece of pieces) if (!/^\d+$/.test(piece)) throw new Error(piece);
  return pieces.map(Number);
}

function segmentName(id) {
  const segment = segments.find((s) => s.id === id);
  return segment ? segment.name : t("campaigns.segment_gone", { id });
}

/** The chosen segment's member count now, asked of the API once per segment; the form is redrawn after. */
async function previewSegment(id) {
  if (previews.has(id)) return;
  previews.set(id, null); // asked already: no second request while the first runs
  try {
    previews.set(id, (await api(`/api/segments/${id}/preview`)).count);
  } catch (error) {
    previews.set(id, error);
  }
  if (draft.segment === String(id)) renderForm();
}

function audienceCount() {
  if (!draft.segment) return null;
  const known = previews.get(Number(draft.segment));
  let text = t("campaigns.audience_counting");
  let kind = "muted small";
  if (known instanceof Error) {
    text = t("campaigns.audience_failed");
    kind = "small admin-flash-error";
  } else if (typeof known === "number") {
    text = known ? t("campaigns.audience_count", { count: known }) : t("campaigns.error.segment_empty");
    if (!known) kind = "small admin-flash-error";
  }
  return h("p", { class: kind, id: "campaign-audience-count", "aria-live": "polite" }, text);
}

function createForm() {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const message = h("textarea", { name: "message", required: true, maxlength: 2000, rows: 3 });
  const ids = h("textarea", { name: "customer_ids", required: !draft.segment, rows: 2, inputmode: "numeric" });
  const audience = h("select", { name: "segment_id" },
    h("option", { value: "" }, t("campaigns.audience_ids")),
    segments.map((s) => h("option", { value: String(s.id) }, s.name)));
  // a segment named in the address that is no longer saved: the form falls back to a list of ids
  if (draft.segment && !segments.some((s) => String(s.id) === draft.segment)) draft.segment = "";
  audience.value = draft.segment;
  const template = h("input", { type: "text", name: "zns_template", maxlength: 40, autocomplete: "off" });
  const rate = h("input", { type: "number", name: "rate_per_minute", min: 1, max: 600, inputmode: "numeric" });
  name.value = draft.name;
  message.value = draft.message;
  ids.value = draft.ids;
  template.value = draft.template;
  rate.value = draft.rate;
  const keep = () => {
    draft = { name: name.value, message: message.value, ids: ids.value, segment: audience.value, template: template.value, rate: rate.value };
  };
  for (const input of [name, message, ids, template, rate]) input.addEventListener("input", keep);
  audience.addEventListener("change", () => {
    keep();
    renderForm();
    if (draft.segment) previewSegment(Number(draft.segment));
  });
  const form = h("form", { class: "card admin-form", id: "campaign-form" },
    h("h2", { "data-i18n": "campaigns.create_title" }, t("campaigns.create_title")),
    field("campaigns.name", name), field("campaigns.message", message, "campaigns.message_hint"),
    field("campaigns.audience", audience, "campaigns.audience_hint"),
    draft.segment ? audienceCount() : field("campaigns.customer_ids", ids, "campaigns.customer_ids_hint"),
    field("campaigns.zns_template", template, "campaigns.zns_template_hint"), field("campaigns.rate", rate),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-i18n": "campaigns.create" }, t("campaigns.create"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const audienceOf = {};
    if (draft.segment) {
      audienceOf.segment_id = Number(draft.segment);
    } else {
      try {
        audienceOf.customer_ids = parseIds(ids.value);
      } catch (error) {
        flash(t("campaigns.ids_invalid", { value: error.message }), "error");
        return;
      }
    }
    try {
      const created = await api("/api/campaigns", { method: "POST", body: {
        name: name.value.trim(), message: message.value, ...audienceOf,
        zns_template: template.value.trim() || null, rate_per_minute: Number(rate.value) || 30 } });
      draft = blankDraft();
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

/** "Segment: <name>" for a campaign whose audience came from a saved segment. */
function segmentLine(campaign) {
  if (!campaign.segment_id) return null;
  return h("p", { class: "small admin-wrap campaign-segment" },
    h("span", { class: "muted" }, t("campaigns.from_segment")), " ", h("strong", {}, segmentName(campaign.segment_id)));
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
    segmentLine(campaign),
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
    segmentLine(c),
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

function renderForm() {
  const old = document.getElementById("campaign-form");
  if (old) old.replaceWith(createForm());
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
  const [campaignPage, segmentPage] = await Promise.all([api("/api/campaigns?limit=100"), api("/api/segments")]);
  campaigns = campaignPage.data;
  segments = segmentPage.data;
  previews.clear(); // members change: a segment chosen again is counted again
  if (opened) opened = campaigns.some((c) => c.id === opened.id) ? await api(`/api/campaigns/${opened.id}`) : null;
  if (opened) {
    const [skipped, failedOnes] = await Promise.all(["skipped", "failed"].map((status) =>
      api(`/api/campaigns/${opened.id}/recipients?status=${status}&limit=20`)));
    notSent = [...failedOnes.data, ...skipped.data];
  }
  render();
  if (draft.segment) previewSegment(Number(draft.segment));
}

onLanguageChange(render);
if (boot.allowed) load().catch((error) => failed(error));
