// The customer's page: their profile and every event of their timeline, newest first, a page at a time
// (GET /api/customers/{id}/timeline). Supervisors merge another customer in, split a merge again, or split
// one channel identity off into a customer of its own. All text goes in through text nodes (dom.js).
import { api, describeError } from "./api.js";
import { $, fill, h } from "./dom.js";
import { currentLanguage, initStrings, locale, onLanguageChange, t } from "./i18n.js";

const boot = JSON.parse($("#inbox-boot").textContent);
const SUPERVISING = boot.agent.role === "admin" || boot.agent.role === "supervisor";
const PAGE_SIZE = 50;
const state = { customerId: boot.customer_id, customer: null, events: [], next: null, loading: false };

/** A translated string, or ``fallback`` when the strings have none for this key (a new kind or status). */
function tOr(key, fallback, values) {
  const text = t(key, values);
  return text === key ? fallback : text;
}

function when(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

function day(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(new Date(iso));
}

function money(vnd) {
  return new Intl.NumberFormat("vi-VN", { style: "currency", currency: "VND" }).format(vnd);
}

function channelChip(channel) {
  return h("span", { class: `channel channel-${channel}` }, tOr(`channel.${channel}`, channel));
}

function conversationLink(id) {
  return h("a", { class: "ct-link", href: `/inbox/conversations/${id}` },
    t("customer_timeline.open_conversation", { id }));
}

function renderProfile() {
  const customer = state.customer;
  if (!customer) return;
  fill($("#ct-name"), customer.name || t("customer_timeline.unnamed", { id: customer.id }));
  const phone = customer.phone
    ? h("span", {}, customer.phone, " ", h("span", { class: `chip ${customer.phone_verified ? "chip-ok" : "chip-muted"}` },
      t(customer.phone_verified ? "details.verified" : "details.unverified")))
    : h("span", { class: "muted" }, t("details.no_phone"));
  fill($("#ct-profile"),
    h("div", { class: "ct-kv" }, h("span", { class: "muted" }, t("customer_timeline.id")), `#${customer.id}`),
    h("div", { class: "ct-kv" }, h("span", { class: "muted" }, t("details.phone")), phone),
    h("div", { class: "muted small" }, t("details.channels")),
    h("ul", { class: "ct-identities", id: "ct-identities" }, customer.identities.map((identity) => h("li", {
      dataset: { channel: identity.channel } },
    channelChip(identity.channel), " ", identity.display_name || identity.external_id,
    SUPERVISING && customer.identities.length > 1 && h("button", {
      type: "button", class: "btn btn-ghost btn-small ct-split", dataset: { identityId: identity.id },
      onclick: () => splitIdentity(identity),
    }, t("customer_timeline.split_identity"))))));
}

function stars(score) {
  return "★".repeat(score) + "☆".repeat(Math.max(0, 5 - score));
}

/** What an event says under its heading, by kind. */
function eventBody(event) {
  const d = event.details;
  switch (event.kind) {
    case "conversation_opened":
      return [
        h("div", { class: "small" }, h("span", { class: `chip state-${d.state}` }, tOr(`state.${d.state}`, d.state)), " ",
          t("customer_timeline.messages", { count: d.messages })),
        d.first_text && h("p", { class: "muted quote" }, d.first_text),
        conversationLink(d.conversation_id)];
    case "conversation_resolved":
      return [conversationLink(d.conversation_id)];
    case "note":
      return [h("p", { class: "quote" }, d.text)];
    case "tag":
      return [h("span", { class: "tag" }, d.tag)];
    case "order":
      return [h("div", {}, h("strong", {}, d.code), " ",
        h("span", { class: `chip order-${d.status}` }, tOr(`order.${d.status}`, d.status)), " · ", money(d.total_vnd))];
    case "warranty":
      return [h("div", {}, (currentLanguage() === "en" && d.product_en) || d.product),
        h("div", { class: "muted small" }, t("customer_timeline.warranty_until", { serial: d.serial, date: day(d.ends_at) }))];
    case "rating":
      return [h("div", {}, h("span", { "aria-hidden": "true" }, stars(d.score)), " ",
        t("customer_timeline.rating_score", { score: d.score }), " · ",
        tOr(`customer_timeline.rating_kind.${d.rating_kind}`, d.rating_kind)),
      d.comment && h("p", { class: "muted quote" }, d.comment)];
    case "nps":
      return [h("div", {}, h("strong", {}, t("customer_timeline.nps_score", { score: d.score })),
        d.order_code && h("span", { class: "muted" }, ` · ${d.order_code}`)),
      d.comment && h("p", { class: "muted quote" }, d.comment)];
    case "care_message": {
      const outcome = [tOr(`customer_timeline.care_status.${d.status}`, d.status)];
      if (d.read) outcome.push(t("customer_timeline.care_read"));
      if (d.replied) outcome.push(t("customer_timeline.care_replied"));
      const step = d.reminder || d.step; // a reminder's step names its occurrence (mnt:0:0:2)
      return [h("div", {}, tOr(`customer_timeline.care_step.${step}`, step),
        d.order_code && h("span", { class: "muted" }, ` · ${d.order_code}`)),
      h("div", { class: "small ct-outcome" }, outcome.join(" · ")),
      d.reason && h("p", { class: "muted small" }, d.reason)];
    }
    case "campaign_message": {
      const outcome = [tOr(`campaigns.timeline.status.${d.status}`, d.status)];
      if (d.replied_at) outcome.push(t("campaigns.timeline.replied"));
      if (d.ordered_at) outcome.push(t("campaigns.timeline.ordered"));
      return [h("div", {}, d.campaign), h("div", { class: "small ct-outcome" }, outcome.join(" · ")),
        d.status === "failed" && d.reason && h("p", { class: "muted small" }, d.reason)];
    }
    case "identity_merged":
    case "identity_split":
      return [h("div", {}, t(`customer_timeline.${event.kind}_text`, {
        id: d.merged_customer_id, name: d.merged_name || "" })),
      SUPERVISING && event.kind === "identity_merged" && !d.split_at && h("button", {
        type: "button", class: "btn btn-small ct-split", onclick: () => splitMerge(d.merge_id),
      }, t("customer_timeline.split_merge"))];
    case "identity_split_off":
      return [h("a", { class: "ct-link", href: `/inbox/customers/${d.new_customer_id}` },
        t("customer_timeline.identity_split_off_text", { id: d.new_customer_id }))];
    case "split_from":
      return [h("a", { class: "ct-link", href: `/inbox/customers/${d.from_customer_id}` },
        t("customer_timeline.split_from_text", { id: d.from_customer_id }))];
    default:
      return [];
  }
}

function eventElement(event) {
  return h("li", { class: `ct-event ct-kind-${event.kind}`, dataset: { kind: event.kind, channel: event.channel || "" } },
    h("div", { class: "ct-event-top" },
      h("span", { class: "ct-event-kind" }, tOr(`customer_timeline.kind.${event.kind}`, event.kind)),
      event.channel && channelChip(event.channel),
      h("time", { class: "muted small ct-event-at", datetime: event.at }, when(event.at))),
    eventBody(event));
}

function renderEvents() {
  fill($("#ct-events"), state.events.map(eventElement));
  const empty = $("#ct-empty");
  empty.hidden = state.events.length > 0;
  empty.textContent = t("customer_timeline.empty");
  $("#ct-more").hidden = !state.next;
}

async function loadPage(reset = false) {
  if (state.loading) return;
  state.loading = true;
  try {
    const cursor = reset || !state.next ? "" : `&cursor=${encodeURIComponent(state.next)}`;
    const page = await api(`/api/customers/${state.customerId}/timeline?limit=${PAGE_SIZE}${cursor}`);
    state.events = reset ? page.data : state.events.concat(page.data);
    state.next = page.next_cursor;
    renderEvents();
  } catch (error) {
    const empty = $("#ct-empty");
    empty.hidden = false;
    empty.textContent = t("customer_timeline.failed", { reason: describeError(error) });
  } finally {
    state.loading = false;
  }
}

async function loadCustomer() {
  state.customer = await api(`/api/customers/${state.customerId}`);
  if (state.customer.id !== state.customerId) {
    // a merged record: show the customer it was merged into, at that customer's address
    state.customerId = state.customer.id;
    history.replaceState({}, "", `/inbox/customers/${state.customerId}`);
  }
  renderProfile();
}

async function reload() {
  await loadCustomer();
  await loadPage(true);
}

function showMergeError(error) {
  const box = $("#ct-merge-error");
  if (!box) return;
  box.hidden = !error;
  box.textContent = error ? describeError(error) : "";
}

async function change(path, body) {
  showMergeError(null);
  try {
    await api(path, { method: "POST", body });
    await reload();
  } catch (error) {
    showMergeError(error);
  }
}

function splitMerge(mergeId) {
  if (!confirm(t("customer_timeline.split_merge_confirm"))) return;
  change(`/api/customers/${state.customerId}/split`, { merge_id: mergeId });
}

function splitIdentity(identity) {
  if (!confirm(t("customer_timeline.split_identity_confirm", { name: identity.display_name || identity.external_id }))) return;
  change(`/api/customers/${state.customerId}/identities/${identity.id}/split`, {});
}

async function start() {
  await initStrings(boot);
  if (!boot.found) return;
  onLanguageChange(() => {
    renderProfile();
    renderEvents();
  });
  const form = $("#ct-merge-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const other = Number($("#ct-merge-other").value);
      if (!other) return;
      if (!confirm(t("customer_timeline.merge_confirm", { id: other }))) return;
      change(`/api/customers/${state.customerId}/merge`, { other_id: other }).then(() => {
        $("#ct-merge-other").value = "";
      });
    });
  }
  $("#ct-more").addEventListener("click", () => loadPage(false));
  try {
    await loadCustomer();
  } catch (error) {
    $("#ct-empty").textContent = t("customer_timeline.failed", { reason: describeError(error) });
    return;
  }
  await loadPage(true);
}

start();
