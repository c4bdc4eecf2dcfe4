// The agent inbox: views, the conversation list, one conversation, live updates and shortcuts.
// Every piece of customer or agent text is put in with text nodes (see dom.js), never as markup.
import { api, describeError } from "./api.js";
import { $, $$, fill, h, show } from "./dom.js";
import { connectLive } from "./live.js";
import { startNotifications } from "./notify.js";
import { startApp } from "./pwa.js";
import { expandCanned } from "./canned_fill.js";
import { applyStrings, initStrings, locale, onLanguageChange, t } from "./i18n.js";
import { watchTyping } from "./typing.js";
import {
  attachmentList, attachmentsElement, closeViewer, formatSize, openViewer, resetViewer, uploadFile, viewableImages,
  viewerOpen,
} from "./attachments.js";
import { initSearch } from "./search.js";

const boot = JSON.parse($("#inbox-boot").textContent);
const me = boot.agent;
const VIEWS = ["unassigned", "mine", "team", "all", "breaching", "resolved"];
const PRIORITIES = ["urgent", "high", "normal", "low"];
const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };
const HUMAN_STATES = ["waiting_for_agent", "with_agent"];
const CHANNELS = ["telegram", "facebook", "zalo_oa", "zalo_bot", "webchat", "cli"];
const PAGE_SIZE = 50;
const SOON_MS = 15 * 60 * 1000;
const SUPERVISING = me.role === "admin" || me.role === "supervisor";

const state = {
  view: viewFromUrl(),
  rows: new Map(),
  order: [],
  total: 0,
  counts: {},
  selectedId: boot.not_found ? null : boot.conversation_id,
  current: null, // { id, row, customer, timeline, commerce }
  messageEls: new Map(),
  mode: "reply",
  clockOffset: 0,
  teams: [],
  agents: [],
  uploads: [], // files waiting in the composer: { file, status, progress, error, node }
};

const el = {
  list: $("#conv-list"),
  listEmpty: $("#list-empty"),
  loadMore: $("#load-more"),
  viewTitle: $("#view-title"),
  viewTotal: $("#view-total"),
  placeholder: $("#conv-placeholder"),
  notFound: $("#conv-notfound"),
  conv: $("#conv"),
  name: $("#conv-name"),
  sub: $("#conv-sub"),
  timeline: $("#timeline"),
  composer: $("#composer"),
  composerText: $("#composer-text"),
  composerSend: $("#composer-send"),
  composerClosed: $("#composer-closed"),
  composerAttach: $("#composer-attach"),
  composerFile: $("#composer-file"),
  uploads: $("#uploads"),
  thread: $(".thread"),
  attachments: $("#attachments-card"),
  canned: $("#canned"),
  cannedList: $("#canned-list"),
  customerCard: $("#customer-card"),
  slaCard: $("#sla-card"),
  nluCard: $("#nlu-card"),
  tagList: $("#tag-list"),
  tagInput: $("#tag-input"),
  priority: $("#priority-select"),
  teamSelect: $("#team-select"),
  agentSelect: $("#agent-select"),
  orders: $("#orders-card"),
  warranties: $("#warranties-card"),
  toasts: $("#toasts"),
  help: $("#help"),
  liveDot: $("#live-dot"),
  liveState: $("#live-state"),
};

// ---------------------------------------------------------------- time and formatting

function viewFromUrl() {
  const view = new URLSearchParams(location.search).get("view");
  return VIEWS.includes(view) ? view : "unassigned";
}

function serverNow() {
  return Date.now() + state.clockOffset;
}

function syncClock(now) {
  // Countdowns use the server's clock: a browser a few minutes off must not show a wrong SLA.
  if (now) state.clockOffset = Date.parse(now) - Date.now();
}

function pad(number) {
  return String(number).padStart(2, "0");
}

function duration(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const clock = hours || days ? `${pad(hours)}:${pad(minutes)}:${pad(seconds)}` : `${pad(minutes)}:${pad(seconds)}`;
  return days ? `${t("sla.days", { days })} ${clock}` : clock;
}

function relativeTime(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.parse(iso) - serverNow()) / 1000);
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: "auto", style: "short" });
  const abs = Math.abs(seconds);
  if (abs < 60) return format.format(0, "second");
  if (abs < 3600) return format.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return format.format(Math.round(seconds / 3600), "hour");
  return format.format(Math.round(seconds / 86400), "day");
}

function clockTime(iso) {
  const date = new Date(iso);
  const sameDay = new Date(serverNow()).toDateString() === date.toDateString();
  const options = sameDay ? { hour: "2-digit", minute: "2-digit" }
    : { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

function fullTime(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso));
}

function dateOnly(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(new Date(iso));
}

function money(vnd) {
  return new Intl.NumberFormat("vi-VN", { style: "currency", currency: "VND" }).format(vnd);
}

function channelName(channel) {
  return CHANNELS.includes(channel) ? t(`channel.${channel}`) : channel;
}

function channelClass(channel) {
  return CHANNELS.includes(channel) ? channel : "other";
}

function customerName(row) {
  return row.customer_name || t("list.unknown_customer", { id: row.customer_id });
}

/** Why the bot handed the conversation to people, in words: a key the strings do not know yet
 * (a new bot flow) reads as "other reason (some key)" rather than as a bare identifier. */
function handoffReason(key) {
  const known = t(`handoff.${key}`);
  return known !== `handoff.${key}` ? known : t("handoff.unknown", { key: String(key).replaceAll("_", " ") });
}

// ---------------------------------------------------------------- chips

function priorityChip(priority) {
  const known = PRIORITIES.includes(priority) ? priority : "normal";
  return h("span", { class: `chip prio prio-${known}` }, t(`priority.${known}`));
}

function stateChip(conversationState) {
  return h("span", { class: `chip state state-${conversationState}` }, t(`state.${conversationState}`));
}

function channelChip(channel) {
  return h("span", { class: `channel channel-${channelClass(channel)}` }, channelName(channel));
}

function tagChip(tag) {
  return h("span", { class: "tag" }, tag);
}

/** The deadline that comes first among those that still apply, or null. */
function nextDeadline(row) {
  if (!HUMAN_STATES.includes(row.state)) return null;
  const candidates = [];
  if (!row.first_response_at && row.first_response_due_at) {
    candidates.push({ target: "first_response", at: row.first_response_due_at });
  }
  if (row.next_response_due_at) candidates.push({ target: "next_response", at: row.next_response_due_at });
  if (row.resolution_due_at) candidates.push({ target: "resolution", at: row.resolution_due_at });
  candidates.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return candidates[0] || null;
}

function countdown(at, status, { long = false } = {}) {
  const node = h("span", { class: "sla", dataset: { due: at, status: status || "ok", format: long ? "long" : "short" } });
  paintCountdown(node);
  return node;
}

function paintCountdown(node) {
  const left = Date.parse(node.dataset.due) - serverNow();
  const late = left < 0 || node.dataset.status === "breached";
  const soon = !late && (left < SOON_MS || node.dataset.status === "warning");
  const text = duration(left);
  if (node.dataset.format === "long") node.textContent = left < 0 ? t("sla.overdue", { time: text }) : t("sla.left", { time: text });
  else node.textContent = left < 0 ? `−${text}` : text;
  node.classList.toggle("sla-late", late);
  node.classList.toggle("sla-soon", soon);
}

// Every countdown on the page ticks from one timer; relative times refresh twice a minute.
let ticks = 0;
setInterval(() => {
  for (const node of $$(".sla[data-due]")) paintCountdown(node);
  ticks += 1;
  if (ticks % 30 === 0) for (const node of $$("time.row-time")) node.textContent = relativeTime(node.dataset.at);
}, 1000);

// ---------------------------------------------------------------- toasts and help

function toast(message, kind = "info", timeout = 6000) {
  const node = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, message),
    h("button", { type: "button", class: "toast-close", "aria-label": t("toast.close"), onclick: () => node.remove() }, "×"));
  el.toasts.appendChild(node);
  if (timeout) setTimeout(() => node.remove(), timeout);
}

function failed(error) {
  if (error && error.status === 401) return; // already on the way to the login page
  if (!navigator.onLine) return; // offline: the banner says so (pwa.js), not a toast per failed call
  toast(t("actions.failed", { detail: describeError(error) }), "error");
}

function toggleHelp(visible = el.help.hidden) {
  show(el.help, visible);
  if (visible) $("#help-close").focus();
}

$("#help-button").addEventListener("click", () => toggleHelp(true));
$("#help-close").addEventListener("click", () => toggleHelp(false));
el.help.addEventListener("click", (event) => {
  if (event.target === el.help) toggleHelp(false);
});

// ---------------------------------------------------------------- the list

function compareRows(a, b) {
  if (state.view === "resolved") return Date.parse(b.resolved_at || 0) - Date.parse(a.resolved_at || 0) || b.id - a.id;
  return (PRIORITY_RANK[a.priority] ?? 4) - (PRIORITY_RANK[b.priority] ?? 4)
    || Date.parse(a.waiting_since) - Date.parse(b.waiting_since) || a.id - b.id;
}

function previewText(row) {
  const preview = row.preview;
  if (!preview) return t("list.no_messages");
  const body = preview.text || (preview.has_attachments ? t("list.attachment") : "");
  if (preview.author === "customer") return body;
  return `${t(`author.${preview.author}`)}: ${body}`;
}

function conversationUrl(id) {
  return `/inbox/conversations/${id}?view=${state.view}`;
}

function rowElement(row) {
  const deadline = nextDeadline(row);
  const assignee = row.assignee_id === me.id ? t("list.you") : row.assignee_name;
  const link = h("a", { class: "row-link", href: conversationUrl(row.id) },
    h("div", { class: "row-top" },
      channelChip(row.channel),
      h("span", { class: "row-name" }, customerName(row)),
      h("time", { class: "row-time", datetime: row.last_message_at || "", dataset: { at: row.last_message_at || "" } },
        relativeTime(row.last_message_at))),
    h("div", { class: "row-preview" }, previewText(row)),
    h("div", { class: "row-meta" },
      priorityChip(row.priority),
      stateChip(row.state),
      row.tags.map(tagChip),
      assignee && h("span", { class: "row-assignee" }, t("list.assignee", { name: assignee })),
      deadline && countdown(deadline.at, row.sla_status)));
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return; // new tab works
    event.preventDefault();
    openConversation(row.id);
  });
  return h("li", {
    class: `row prio-${row.priority}${row.id === state.selectedId ? " selected" : ""}`,
    dataset: { id: row.id, state: row.state },
    "aria-current": row.id === state.selectedId ? "true" : null,
  }, link);
}

function renderList() {
  el.list.replaceChildren(...state.order.map((id) => rowElement(state.rows.get(id))));
  el.listEmpty.removeAttribute("data-i18n");
  el.listEmpty.textContent = t("list.empty");
  show(el.listEmpty, state.order.length === 0);
  show(el.loadMore, state.order.length < state.total);
  el.viewTitle.textContent = t(`views.${state.view}`);
  el.viewTotal.textContent = t("list.count", { count: state.total });
  watchVisible();
}

function renderCounts() {
  for (const node of $$("[data-count]")) {
    const count = state.counts[node.dataset.count];
    node.textContent = count === undefined ? "" : String(count);
    node.classList.toggle("zero", !count);
  }
  for (const link of $$(".view-link")) link.classList.toggle("active", link.dataset.view === state.view);
  if (state.counts[state.view] !== undefined) state.total = state.counts[state.view];
}

function sortOrder() {
  state.order.sort((a, b) => compareRows(state.rows.get(a), state.rows.get(b)));
}

/** Put a fresh row where it belongs: in this view (sorted) or out of it. */
function applyRow(row) {
  if (row.views.includes(state.view)) {
    if (!state.rows.has(row.id)) state.order.push(row.id);
    state.rows.set(row.id, row);
  } else {
    dropRow(row.id);
  }
  if (state.current && state.current.id === row.id) {
    state.current.row = row;
    renderHeader();
    renderDetails();
  }
}

function dropRow(id) {
  if (!state.rows.has(id)) return;
  state.rows.delete(id);
  state.order = state.order.filter((other) => other !== id);
}

async function loadView({ more = false } = {}) {
  const offset = more ? state.order.length : 0;
  // A refresh keeps as many rows as the agent had loaded, so the list does not shrink under them.
  const limit = more ? PAGE_SIZE : Math.max(PAGE_SIZE, Math.min(state.order.length, 200));
  const view = state.view;
  const page = await api(`/inbox/api/views?view=${view}&limit=${limit}&offset=${offset}`);
  if (view !== state.view) return;
  syncClock(page.now);
  if (!more) {
    state.rows.clear();
    state.order = [];
  }
  for (const row of page.data) {
    if (!state.rows.has(row.id)) state.order.push(row.id);
    state.rows.set(row.id, row);
  }
  state.counts = page.counts;
  state.total = page.count;
  renderCounts();
  renderList();
}

async function loadCounts() {
  const data = await api("/inbox/api/counts");
  syncClock(data.now);
  state.counts = data.counts;
  renderCounts();
  el.viewTotal.textContent = t("list.count", { count: state.total });
  show(el.loadMore, state.order.length < state.total);
}

function setView(view) {
  if (!VIEWS.includes(view) || view === state.view) return;
  state.view = view;
  const path = state.selectedId ? `/inbox/conversations/${state.selectedId}` : "/inbox";
  history.pushState({}, "", `${path}?view=${view}`);
  state.rows.clear();
  state.order = [];
  renderCounts();
  renderList();
  loadView().catch(failed);
}

for (const link of $$(".view-link")) {
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    setView(link.dataset.view);
  });
}
el.loadMore.addEventListener("click", () => loadView({ more: true }).catch(failed));

// ---------------------------------------------------------------- batched refetches after live events

const pending = { rows: new Set(), rowsTimer: null, countsTimer: null, timelineTimer: null, viewTimer: null };

function queueRows(ids) {
  for (const id of ids) pending.rows.add(id);
  if (!pending.rowsTimer) pending.rowsTimer = setTimeout(flushRows, 30);
}

async function flushRows() {
  pending.rowsTimer = null;
  const ids = [...pending.rows];
  pending.rows.clear();
  if (!ids.length) return;
  try {
    const data = await api(`/inbox/api/rows?ids=${ids.join(",")}`);
    syncClock(data.now);
    for (const row of data.data) applyRow(row);
    for (const id of data.missing) {
      dropRow(id);
      if (id === state.selectedId) showNotFound();
    }
    sortOrder();
    renderList();
  } catch (error) {
    failed(error);
  }
}

function queueCounts() {
  clearTimeout(pending.countsTimer);
  pending.countsTimer = setTimeout(() => loadCounts().catch(failed), 250);
}

function queueTimeline() {
  if (!pending.timelineTimer) {
    pending.timelineTimer = setTimeout(() => {
      pending.timelineTimer = null;
      if (state.current) loadTimeline(state.current.id).catch(failed);
    }, 30);
  }
}

function queueView() {
  clearTimeout(pending.viewTimer);
  pending.viewTimer = setTimeout(() => loadView().catch(failed), 250);
}

// ---------------------------------------------------------------- one conversation

function showPane(which) {
  show(el.placeholder, which === "placeholder");
  show(el.notFound, which === "notfound");
  show(el.conv, which === "conversation");
}

function showNotFound() {
  state.current = null;
  state.selectedId = null;
  showPane("notfound");
  document.title = `${t("conversation.not_found")} · CareDesk`;
  renderList();
}

function markSelected() {
  for (const node of $$(".row", el.list)) {
    const selected = Number(node.dataset.id) === state.selectedId;
    node.classList.toggle("selected", selected);
    if (selected) {
      node.setAttribute("aria-current", "true");
      node.scrollIntoView({ block: "nearest" });
    } else {
      node.removeAttribute("aria-current");
    }
  }
}

async function openConversation(id, { push = true } = {}) {
  if (notify) notify.seen(id);
  if (push) history.pushState({}, "", conversationUrl(id));
  const switching = !state.current || state.current.id !== id;
  state.selectedId = id;
  markSelected();
  watchVisible();
  if (switching) {
    state.current = { id, row: state.rows.get(id) || null, customer: null, timeline: [], commerce: null };
    state.messageEls = new Map();
    el.timeline.replaceChildren(h("p", { class: "muted center" }, t("conversation.loading")));
    setMode("reply");
    el.composerText.value = "";
    clearUploads();
    closeCanned();
    showPane("conversation");
    if (state.current.row) {
      renderHeader();
      renderDetails();
    }
  }
  const data = await api(`/inbox/api/rows?ids=${id}`);
  if (state.selectedId !== id) return;
  syncClock(data.now);
  if (!data.data.length) {
    showNotFound();
    return;
  }
  state.current.row = data.data[0];
  renderHeader();
  renderDetails();
  const customerId = state.current.row.customer_id;
  await Promise.all([
    loadTimeline(id),
    api(`/api/customers/${customerId}`).then((customer) => {
      if (state.current && state.current.id === id) {
        state.current.customer = customer;
        renderCustomer();
      }
    }),
    api(`/inbox/api/conversations/${id}/commerce`).then((commerce) => {
      if (state.current && state.current.id === id) {
        state.current.commerce = commerce;
        renderCommerce();
      }
    }),
  ]);
}

function closeConversation() {
  state.selectedId = null;
  state.current = null;
  showPane("placeholder");
  document.title = `${t("app.inbox")} · CareDesk`;
  markSelected();
}

async function loadTimeline(id) {
  const customerId = state.current.row.customer_id;
  // each message carries its attachments in the API's shape (stored copy, thumbnail, status)
  const data = await api(`/api/customers/${customerId}/messages`);
  if (!state.current || state.current.id !== id) return;
  state.current.timeline = data.data;
  renderTimeline();
  renderNlu();
}

function authorName(message) {
  if (message.author === "agent" && message.agent_id === me.id) return t("author.you");
  if (message.author === "agent") {
    const agent = state.agents.find((a) => a.id === message.agent_id);
    return agent ? agent.name : t("author.agent");
  }
  return t(`author.${message.author}`);
}

const FAILURE_KINDS = ["blocked", "outside_window", "too_large", "rate_limited", "unknown"];

/** Why a send failed, in the agent's language, from the kind the server read in the platform's answer. */
function deliveryFailure(message) {
  if (!message.delivery_error) return t("delivery.unknown_reason");
  const kind = FAILURE_KINDS.includes(message.delivery_error_kind) ? message.delivery_error_kind : "unknown";
  return t(`delivery.error.${kind}`);
}

function deliveryElement(message) {
  if (message.direction !== "out" || message.is_private || !message.delivery_status) return null;
  const status = message.delivery_status;
  const label = status === "failed" ? t("delivery.failed", { reason: deliveryFailure(message) }) : t(`delivery.${status}`);
  // The platform's own words (often English) stay one hover away for whoever needs them.
  const details = status === "failed" && message.delivery_error
    ? t("delivery.error.details", { reason: message.delivery_error }) : null;
  return h("div", { class: `delivery delivery-${status}`, dataset: { status, errorKind: message.delivery_error_kind || "" } },
    h("span", { class: "delivery-label", title: details }, label),
    status === "failed" && h("button", { type: "button", class: "btn btn-small", onclick: () => retry(message) }, t("delivery.retry")));
}

function messageElement(message) {
  const kind = message.is_private ? "note" : message.author;
  const body = message.text || (message.payload ? t("message.button", { payload: message.payload }) : "");
  return h("article", {
    class: `msg msg-${kind} ${message.direction === "in" ? "msg-in" : "msg-out"}`,
    dataset: { id: message.id, author: message.author, conversation: message.conversation_id },
  },
  h("div", { class: "msg-meta" },
    h("span", { class: "msg-author" }, authorName(message)),
    h("span", { class: "msg-channel" }, channelName(message.channel)),
    h("time", { datetime: message.created_at, title: fullTime(message.created_at) }, clockTime(message.created_at))),
  message.is_private && h("div", { class: "note-label" }, t("message.note")),
  body && h("div", { class: "bubble" }, body),
  attachmentsElement(message, openImage),
  readingElement(message),
  deliveryElement(message));
}

/** How the bot read a customer's message, which model read it, and "the bot misunderstood this". */
function readingElement(message) {
  if (message.author !== "customer" || !message.nlu || !message.nlu.intent) return null;
  const intent = message.nlu.intent;
  const version = message.nlu.model_version || "?";
  const percent = Math.round((Number(intent.confidence) || 0) * 100);
  return h("div", { class: "msg-nlu muted small", dataset: { model: version } },
    h("span", { class: "msg-nlu-reading" }, t("message.nlu", { intent: intent.name || "?", percent, version })), " ",
    h("button", { type: "button", class: "btn btn-ghost btn-small msg-flag", onclick: () => flagMisunderstood(message) },
      t("message.flag")));
}

async function flagMisunderstood(message) {
  try {
    await api("/api/nlu/review/flag", { method: "POST", body: { message_id: message.id } });
    toast(t("message.flagged"), "success", 4000);
  } catch (error) {
    failed(error);
  }
}

function messageSignature(message) {
  // an attachment's stored copy, thumbnail or failure arrives after the message: redraw it then
  const files = (message.attachments || []).map((a) => `${a.id}:${a.url}:${a.thumbnail_url}:${a.error}`).join(",");
  return `${message.delivery_status}|${message.delivery_error}|${document.documentElement.lang}|${files}`;
}

/** Open the image viewer on one image, paging through every image of the customer's timeline. */
function openImage(key) {
  if (!state.current) return;
  const items = viewableImages(state.current.timeline);
  const index = items.findIndex((item) => item.key === key || item.url === key);
  if (index >= 0) openViewer(items, index);
}

/** The customer panel's list: every file, photo, location and contact of this conversation. */
function renderAttachments() {
  if (!state.current) return;
  const messages = state.current.timeline.filter((m) => m.conversation_id === state.current.id);
  el.attachments.replaceChildren(...attachmentList(messages, openImage, (m) => clockTime(m.created_at)));
}

function renderTimeline() {
  const timeline = el.timeline;
  const nearBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
  const firstPaint = state.messageEls.size === 0;
  const nodes = [];
  let lastConversation = null;
  const kept = new Map();
  for (const message of state.current.timeline) {
    if (message.conversation_id !== lastConversation) {
      lastConversation = message.conversation_id;
      const here = message.conversation_id === state.current.id;
      nodes.push(h("div", { class: `divider${here ? " divider-current" : ""}` },
        h("span", {}, t("conversation.divider", { id: message.conversation_id, channel: channelName(message.channel) }))));
    }
    // Reuse a message's node while nothing about it changed, so a refetch does not redraw everything.
    const signature = messageSignature(message);
    const previous = state.messageEls.get(message.id);
    const node = previous && previous.signature === signature ? previous.node : messageElement(message);
    kept.set(message.id, { node, signature });
    nodes.push(node);
  }
  state.messageEls = kept;
  if (!nodes.length) nodes.push(h("p", { class: "muted center" }, t("conversation.empty")));
  timeline.replaceChildren(...nodes);
  if (firstPaint || nearBottom) timeline.scrollTop = timeline.scrollHeight;
  renderAttachments();
}

function renderHeader() {
  const row = state.current && state.current.row;
  if (!row) return;
  const name = customerName(row);
  el.name.textContent = name;
  document.title = `${name} · ${t("app.inbox")} · CareDesk`;
  const assignee = row.assignee_id === me.id ? t("list.you") : row.assignee_name;
  fill(el.sub,
    h("span", { class: "muted" }, t("conversation.number", { id: row.id })),
    channelChip(row.channel),
    stateChip(row.state),
    priorityChip(row.priority),
    h("span", { class: "muted" }, row.team ? t("conversation.team", { team: row.team }) : t("conversation.no_team")),
    h("span", { class: "muted" }, assignee ? t("list.assignee", { name: assignee }) : t("conversation.unassigned")),
    row.escalation_reason && h("span", { class: "muted handoff-reason", title: row.escalation_reason },
      t("conversation.reason", { reason: handoffReason(row.escalation_reason) })));
  const resolved = row.state === "resolved";
  const mine = row.assignee_id === me.id && row.state === "with_agent";
  show($("#act-claim"), !resolved && !mine);
  show($("#act-handback"), HUMAN_STATES.includes(row.state));
  show($("#act-resolve"), !resolved);
  show($("#act-reopen"), resolved);
  show(el.composer, !resolved);
  show(el.composerClosed, resolved);
}

function renderDetails() {
  const row = state.current && state.current.row;
  if (!row) return;
  renderSla(row);
  renderTags(row);
  el.priority.value = row.priority;
  renderAssignment(row);
}

function renderSla(row) {
  const lines = [];
  const targets = [
    ["first_response", row.first_response_due_at, Boolean(row.first_response_at)],
    ["next_response", row.next_response_due_at, false],
    ["resolution", row.resolution_due_at, row.state === "resolved"],
  ];
  for (const [target, due, met] of targets) {
    if (!due && !met) continue;
    const value = met || !HUMAN_STATES.includes(row.state)
      ? h("span", { class: "sla-met" }, met ? t("sla.met") : "—")
      : countdown(due, row.sla_status, { long: true });
    lines.push(h("div", { class: "kv" }, h("span", { class: "muted" }, t(`sla.${target}`)), value));
  }
  if (!lines.length) lines.push(h("p", { class: "muted" }, t("sla.none")));
  const status = ["ok", "warning", "breached"].includes(row.sla_status) ? row.sla_status : "ok";
  el.slaCard.replaceChildren(h("span", { class: `chip sla-status sla-status-${status}` }, t(`sla.status.${status}`)), ...lines);
}

function renderTags(row) {
  el.tagList.replaceChildren(...row.tags.map((tag) => h("span", { class: "tag tag-editable" }, tag,
    h("button", { type: "button", class: "tag-remove", "aria-label": t("details.remove_tag", { tag }),
      onclick: () => changeTags({ remove: [tag] }) }, "×"))));
}

function renderAssignment(row) {
  const teams = [...new Set([...state.teams.map((team) => team.name), ...(row.team ? [row.team] : [])])];
  el.teamSelect.replaceChildren(h("option", { value: "" }, t("details.choose_team")),
    ...teams.map((name) => h("option", { value: name, selected: name === row.team }, name)));
  const agents = SUPERVISING ? state.agents.filter((agent) => agent.is_active) : [me];
  el.agentSelect.replaceChildren(h("option", { value: "" }, t("details.choose_agent")),
    ...agents.map((agent) => h("option", { value: agent.id, selected: agent.id === row.assignee_id },
      agent.id === me.id ? `${agent.name} (${t("list.you")})`
        : agent.is_online ? `● ${agent.name} (${t("details.online")})` : agent.name)));
}

function renderCustomer() {
  const customer = state.current && state.current.customer;
  if (!customer) return;
  const row = state.current.row;
  const phone = customer.phone
    ? h("span", {}, customer.phone, " ",
      h("span", { class: `chip ${customer.phone_verified ? "chip-ok" : "chip-muted"}` },
        t(customer.phone_verified ? "details.verified" : "details.unverified")))
    : h("span", { class: "muted" }, t("details.no_phone"));
  fill(el.customerCard,
    h("div", { class: "customer-name" }, customer.name || customerName(row)),
    h("div", { class: "kv" }, h("span", { class: "muted" }, t("details.phone")), phone),
    h("div", { class: "muted small label" }, t("details.channels")),
    h("ul", { class: "identities" }, customer.identities.map((identity) => h("li", {},
      channelChip(identity.channel), " ", identity.display_name || identity.external_id,
      !identity.reachable && h("span", { class: "chip chip-bad", title: identity.unreachable_reason || "" },
        t("details.unreachable"))))),
    h("a", { class: "customer-timeline-link", id: "customer-timeline-link", href: `/inbox/customers/${customer.id}` },
      t("customer_timeline.open_link")));
}

function renderNlu() {
  const messages = state.current.timeline.filter((m) => m.author === "customer" && m.nlu && m.nlu.intent);
  const inThis = messages.filter((m) => m.conversation_id === state.current.id);
  const last = (inThis.length ? inThis : messages).at(-1);
  if (!last) {
    el.nluCard.replaceChildren(h("p", { class: "muted" }, t("details.nlu_none")));
    return;
  }
  const intent = last.nlu.intent;
  const percent = Math.round((Number(intent.confidence) || 0) * 100);
  const bar = h("div", { class: "meter" }, h("div", { class: "meter-fill" }));
  bar.firstChild.style.width = `${percent}%`;
  fill(el.nluCard,
    h("div", { class: "intent" }, h("code", {}, intent.name || "?"), h("span", { class: "muted small" }, t("details.confidence", { percent }))),
    bar,
    h("p", { class: "muted small quote" }, last.text),
    last.nlu.model_version && h("p", { class: "muted small nlu-model" }, t("details.model", { version: last.nlu.model_version })));
}

function renderCommerce() {
  const commerce = state.current && state.current.commerce;
  if (!commerce) return;
  fill(el.orders, ...(commerce.orders.length ? commerce.orders.map((order) => h("div", { class: "order" },
    h("div", { class: "order-top" }, h("strong", {}, order.code),
      h("span", { class: `chip order-${order.status}` }, t(`order.${order.status}`))),
    h("div", { class: "muted small" }, order.items.join(", ")),
    h("div", { class: "small" }, money(order.total_vnd), " · ", dateOnly(order.created_at))))
    : [h("p", { class: "muted" }, t("details.orders_none")),
      !commerce.phone_verified && h("p", { class: "muted small" }, t("details.orders_need_phone"))]));
  fill(el.warranties, ...(commerce.warranties.length ? commerce.warranties.map((warranty) => h("div", { class: "order" },
    h("div", { class: "order-top" }, h("strong", {}, warranty.product_name || warranty.serial),
      h("span", { class: `chip ${warranty.active ? "chip-ok" : "chip-muted"}` },
        t(warranty.active ? "details.warranty_active" : "details.warranty_expired"))),
    h("div", { class: "muted small" }, warranty.serial, warranty.order_code ? ` · ${warranty.order_code}` : ""),
    h("div", { class: "small" }, t("details.warranty_until", { date: dateOnly(warranty.ends_at) }))))
    : [h("p", { class: "muted" }, t("details.warranties_none"))]));
}

// ---------------------------------------------------------------- actions

const DONE = { claim: "actions.claimed", resolve: "actions.resolved", reopen: "actions.reopened", handback: "actions.handed_back" };

async function act(action) {
  const row = state.current && state.current.row;
  if (!row) return;
  try {
    await api(`/api/conversations/${row.id}/${action}`, { method: "POST" });
    toast(t(DONE[action]), "success", 3000);
    queueRows([row.id]);
    queueCounts();
  } catch (error) {
    failed(error);
  }
}

for (const button of $$("[data-action]")) button.addEventListener("click", () => act(button.dataset.action));

async function retry(message) {
  try {
    await api(`/api/conversations/${message.conversation_id}/messages/${message.id}/retry`, { method: "POST" });
    toast(t("actions.retried"), "info", 3000);
    queueTimeline();
  } catch (error) {
    failed(error);
  }
}

async function changeTags(change) {
  const row = state.current && state.current.row;
  if (!row) return;
  try {
    await api(`/api/conversations/${row.id}/tags`, { method: "POST", body: { add: [], remove: [], ...change } });
    queueRows([row.id]);
  } catch (error) {
    failed(error);
  }
}

el.tagInput.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  event.preventDefault();
  const tag = el.tagInput.value.trim();
  if (!tag) return;
  el.tagInput.value = "";
  changeTags({ add: [tag] });
});

el.priority.addEventListener("change", async () => {
  const row = state.current && state.current.row;
  if (!row) return;
  try {
    await api(`/api/conversations/${row.id}`, { method: "PATCH", body: { priority: el.priority.value } });
    queueRows([row.id]);
  } catch (error) {
    failed(error);
    el.priority.value = row.priority;
  }
});

$("#transfer-button").addEventListener("click", async () => {
  const row = state.current && state.current.row;
  const team = el.teamSelect.value;
  if (!row || !team) return;
  try {
    await api(`/api/conversations/${row.id}/assign`, { method: "POST", body: { team } });
    toast(t("actions.transferred", { team }), "success", 3000);
    queueRows([row.id]);
    queueCounts();
  } catch (error) {
    failed(error);
  }
});

$("#assign-button").addEventListener("click", async () => {
  const row = state.current && state.current.row;
  const agentId = Number(el.agentSelect.value);
  if (!row || !agentId) return;
  try {
    await api(`/api/conversations/${row.id}/assign`, { method: "POST", body: { agent_id: agentId } });
    const agent = state.agents.find((a) => a.id === agentId) || me;
    toast(t("actions.assigned", { name: agent.name }), "success", 3000);
    queueRows([row.id]);
    queueCounts();
  } catch (error) {
    failed(error);
  }
});

$("#logout-button").addEventListener("click", async () => {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    location.assign("/inbox/login");
  }
});

// ---------------------------------------------------------------- the composer and canned responses

function setMode(mode) {
  state.mode = mode;
  el.composer.classList.toggle("note-mode", mode === "note");
  for (const tab of $$(".composer-tabs .tab")) {
    tab.classList.toggle("active", tab.dataset.mode === mode);
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }
  el.composerText.dataset.i18nPlaceholder = mode === "note" ? "composer.placeholder_note" : "composer.placeholder_reply";
  el.composerText.placeholder = t(el.composerText.dataset.i18nPlaceholder);
  el.composerSend.dataset.i18n = mode === "note" ? "composer.save_note" : "composer.send";
  el.composerSend.textContent = t(el.composerSend.dataset.i18n);
}

for (const tab of $$(".composer-tabs .tab")) {
  tab.addEventListener("click", () => {
    setMode(tab.dataset.mode);
    el.composerText.focus();
  });
}

// the customer sees "typing" while the agent writes a reply (notes are private: never shown)
const typing = watchTyping(el.composerText, () => (state.mode === "reply" && state.current ? state.current.id : null));

function focusComposer(mode, text) {
  if (!state.current || el.composer.hidden) return;
  setMode(mode);
  if (text !== undefined) el.composerText.value = text;
  el.composerText.focus();
  updateCanned();
}

async function send() {
  const row = state.current && state.current.row;
  const text = el.composerText.value.trim();
  if (!row) return;
  const note = state.mode === "note";
  const files = state.uploads.filter((upload) => upload.status === "waiting" || upload.status === "failed");
  if (!note && files.length) {
    await sendFiles(row, text, files);
    return;
  }
  if (!text) return;
  el.composerSend.disabled = true;
  try {
    const message = await api(`/api/conversations/${row.id}/${note ? "notes" : "messages"}`, { method: "POST", body: { text } });
    el.composerText.value = "";
    if (!note) typing.sent();
    if (state.current && state.current.id === row.id && !state.current.timeline.some((m) => m.id === message.id)) {
      state.current.timeline.push(message);
      renderTimeline();
      el.timeline.scrollTop = el.timeline.scrollHeight;
    }
    queueRows([row.id]);
  } catch (error) {
    failed(error);
  } finally {
    el.composerSend.disabled = false;
  }
}

function showSent(row, message) {
  if (!message || message.id === undefined) return;
  if (state.current && state.current.id === row.id && !state.current.timeline.some((m) => m.id === message.id)) {
    state.current.timeline.push(message);
    renderTimeline();
    el.timeline.scrollTop = el.timeline.scrollHeight;
  }
}

/** Send the waiting files one by one, the typed text as the first one's caption. */
async function sendFiles(row, text, files) {
  el.composerSend.disabled = true;
  let caption = text;
  try {
    for (const upload of files) {
      upload.status = "sending";
      upload.error = null;
      upload.progress = 0;
      renderUploads();
      try {
        const message = await uploadFile(`/api/conversations/${row.id}/messages`, upload.file, caption, (fraction) => {
          upload.progress = fraction;
          paintProgress(upload);
        });
        if (caption) {
          el.composerText.value = "";
          caption = "";
        }
        state.uploads = state.uploads.filter((item) => item !== upload);
        showSent(row, message);
      } catch (error) {
        if (error && error.status === 401) return;
        upload.status = "failed";
        upload.error = String((error && error.detail) || error);
        toast(t("upload.failed", { name: upload.file.name || t("upload.pasted"), reason: upload.error }), "error", 8000);
      }
      renderUploads();
    }
  } finally {
    el.composerSend.disabled = false;
    queueRows([row.id]);
  }
}

// ---------------------------------------------------------------- files in the composer

function uploadStatus(upload) {
  if (upload.status === "failed") return t("upload.refused", { reason: upload.error });
  if (upload.status === "sending") return t("upload.sending", { percent: Math.round(upload.progress * 100) });
  return formatSize(upload.file.size) || t("upload.ready");
}

function paintProgress(upload) {
  if (!upload.node) return;
  upload.node.querySelector(".upload-fill").style.width = `${Math.round(upload.progress * 100)}%`;
  upload.node.querySelector(".upload-status").textContent = uploadStatus(upload);
}

function uploadNode(upload) {
  const name = upload.file.name || t("upload.pasted");
  const placeholder = () => h("span", { class: "upload-preview", "aria-hidden": "true" },
    upload.file.type.startsWith("image/") ? "🖼" : "📄");
  let preview = placeholder();
  if (upload.preview) {
    preview = h("img", { class: "upload-preview", src: upload.preview, alt: "" });
    preview.addEventListener("error", () => preview.replaceWith(placeholder()), { once: true });
  }
  const fill = h("div", { class: "upload-fill" });
  fill.style.width = `${Math.round((upload.progress || 0) * 100)}%`;
  return h("li", { class: `upload upload-${upload.status}`, dataset: { status: upload.status } },
    preview,
    h("div", { class: "upload-main" },
      h("span", { class: "att-name upload-name", title: name }, name),
      h("div", { class: "upload-bar", role: "progressbar", "aria-label": name }, fill),
      h("span", { class: "muted small upload-status" }, uploadStatus(upload))),
    h("button", { type: "button", class: "upload-remove", "aria-label": t("upload.remove", { name }),
      disabled: upload.status === "sending", onclick: () => removeUpload(upload) }, "×"));
}

function renderUploads() {
  for (const upload of state.uploads) upload.node = uploadNode(upload);
  el.uploads.replaceChildren(...state.uploads.map((upload) => upload.node));
  show(el.uploads, state.uploads.length > 0);
}

function removeUpload(upload) {
  if (upload.status === "sending") return;
  state.uploads = state.uploads.filter((item) => item !== upload);
  renderUploads();
}

function clearUploads() {
  state.uploads = state.uploads.filter((upload) => upload.status === "sending");
  renderUploads();
}

const PREVIEW_MAX_BYTES = 8 * 1024 * 1024;

/** Put files in the composer, to go with the next Send (replies only: notes carry text). */
function addFiles(files) {
  if (!state.current || el.composer.hidden) return;
  if (state.mode === "note") setMode("reply");
  // What a file may be (size, type) is the server's to decide: its reason shows on the file's row.
  for (const file of files) {
    if (!file) continue;
    const upload = { file, status: "waiting", progress: 0, error: null, node: null, preview: null };
    state.uploads.push(upload);
    if (file.type.startsWith("image/") && file.size <= PREVIEW_MAX_BYTES) {
      // a data: URL (the page's policy allows those for images, not blob: URLs)
      const reader = new FileReader();
      reader.addEventListener("load", () => {
        upload.preview = reader.result;
        if (state.uploads.includes(upload)) renderUploads();
      });
      reader.readAsDataURL(file);
    }
  }
  renderUploads();
  el.composerText.focus();
}

el.composerAttach.addEventListener("click", () => el.composerFile.click());
el.composerFile.addEventListener("change", () => {
  addFiles([...el.composerFile.files]);
  el.composerFile.value = "";
});

el.composerText.addEventListener("paste", (event) => {
  const data = event.clipboardData;
  if (!data) return;
  const files = [...data.files].filter((file) => file.type.startsWith("image/"));
  // a copied picture (a screenshot) becomes a file; copied text with pictures in it stays text
  if (!files.length || data.getData("text/plain")) return;
  event.preventDefault();
  addFiles(files);
});

function carriesFiles(event) {
  return Boolean(event.dataTransfer && [...event.dataTransfer.types].includes("Files"));
}

let dragDepth = 0;
el.thread.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event) || el.composer.hidden) return;
  event.preventDefault();
  dragDepth += 1;
  el.thread.classList.add("dropping");
});
el.thread.addEventListener("dragover", (event) => {
  if (!carriesFiles(event) || el.composer.hidden) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
});
el.thread.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) el.thread.classList.remove("dropping");
});
el.thread.addEventListener("drop", (event) => {
  dragDepth = 0;
  el.thread.classList.remove("dropping");
  if (!carriesFiles(event) || el.composer.hidden) return;
  event.preventDefault();
  addFiles([...event.dataTransfer.files]);
});

el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

const canned = { items: [], index: 0, timer: null, sequence: 0, open: false };

function closeCanned() {
  canned.open = false;
  canned.items = [];
  clearTimeout(canned.timer);
  canned.sequence += 1;
  show(el.canned, false);
}

function updateCanned() {
  const match = /^\/(\S*)$/.exec(el.composerText.value);
  if (!match) {
    closeCanned();
    return;
  }
  clearTimeout(canned.timer);
  canned.timer = setTimeout(async () => {
    const sequence = ++canned.sequence;
    try {
      const data = await api(`/api/canned-responses?q=${encodeURIComponent(match[1])}&limit=8`);
      if (sequence !== canned.sequence) return;
      canned.items = data.data;
      canned.index = 0;
      canned.open = true;
      renderCanned();
    } catch (error) {
      failed(error);
    }
  }, 100);
}

function renderCanned() {
  show(el.canned, true);
  if (!canned.items.length) {
    el.cannedList.replaceChildren(h("li", { class: "muted canned-empty" }, t("canned.empty")));
    return;
  }
  el.cannedList.replaceChildren(...canned.items.map((item, index) => {
    const node = h("li", { class: `canned-item${index === canned.index ? " active" : ""}`, role: "option",
      "aria-selected": String(index === canned.index) },
    h("div", {}, h("strong", {}, `/${item.shortcut}`), " ", h("span", {}, item.title)),
    h("div", { class: "muted small canned-text" }, item.text));
    // mousedown, not click: the textarea must keep focus.
    node.addEventListener("mousedown", (event) => {
      event.preventDefault();
      chooseCanned(index);
    });
    return node;
  }));
}

async function chooseCanned(index) {
  const item = canned.items[index];
  if (!item) return;
  closeCanned();
  const text = await expandCanned(item, state.selectedId);
  el.composerText.value = text;
  el.composerText.focus();
  el.composerText.setSelectionRange(text.length, text.length);
}

el.composerText.addEventListener("input", updateCanned);
el.composerText.addEventListener("keydown", (event) => {
  if (canned.open && canned.items.length && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    canned.index = (canned.index + step + canned.items.length) % canned.items.length;
    renderCanned();
    return;
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (canned.open && canned.items.length) chooseCanned(canned.index);
    else send();
  }
});

// ---------------------------------------------------------------- keyboard shortcuts

function move(step) {
  if (!state.order.length) return;
  const index = state.order.indexOf(state.selectedId);
  const next = index === -1 ? (step > 0 ? 0 : state.order.length - 1)
    : Math.min(Math.max(index + step, 0), state.order.length - 1);
  if (state.order[next] !== state.selectedId) openConversation(state.order[next]).catch(failed);
}

document.addEventListener("keydown", (event) => {
  if (viewerOpen()) {
    if (event.key === "Escape") closeViewer();
    return; // the viewer has the keyboard (its own arrows and Escape)
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape") {
    if (!el.help.hidden) toggleHelp(false);
    else if (canned.open) closeCanned();
    else if (typing) event.target.blur();
    return;
  }
  if (typing) return;
  if (!el.help.hidden && event.key !== "?") return;
  const handlers = {
    j: () => move(1),
    k: () => move(-1),
    c: () => act("claim"),
    r: () => focusComposer("reply"),
    n: () => focusComposer("note"),
    e: () => act("resolve"),
    "/": () => focusComposer("reply", "/"),
    "?": () => toggleHelp(),
  };
  const handler = handlers[event.key];
  if (!handler) return;
  event.preventDefault();
  handler();
});

// ---------------------------------------------------------------- live updates

let live = null;
let notify = null; // notify.js: browser notifications, the sound, the unread count in the title

function watchVisible() {
  if (!live) return;
  const ids = [...state.order];
  if (state.selectedId && !ids.includes(state.selectedId)) ids.push(state.selectedId);
  live.watch(ids);
}

function rowName(id) {
  const row = state.rows.get(id) || (state.current && state.current.id === id && state.current.row);
  return row ? customerName(row) : `#${id}`;
}

function onFrame(frame) {
  if (notify) notify.onFrame(frame);
  if (frame.type === "hello") {
    // After a (re)connection anything may have happened meanwhile: reload what is on screen.
    queueView();
    if (state.current) queueRows([state.current.id]);
    if (state.current) queueTimeline();
    return;
  }
  if (frame.type === "gone") {
    dropRow(frame.conversation_id);
    renderList();
    queueCounts();
    if (frame.conversation_id === state.selectedId) showNotFound();
    return;
  }
  if (frame.type !== "event") return;
  const id = frame.conversation_id;
  const open = state.current && state.current.id === id;
  switch (frame.event) {
    case "message_created":
      queueRows([id]);
      if (frame.new_conversation) queueCounts();
      if (open) queueTimeline();
      break;
    case "conversation_escalated":
    case "conversation_updated":
      queueRows([id]);
      queueCounts();
      if (open) queueTimeline();
      break;
    case "message_delivery":
    case "attachment_updated": // a file was fetched and stored, or failed: show it (or why not)
      if (open) queueTimeline();
      break;
    case "sla_warning":
    case "sla_breached":
      queueRows([id]);
      queueCounts();
      if (frame.assignee_id === me.id || frame.assignee_id === null || frame.assignee_id === undefined) {
        const target = ["first_response", "next_response", "resolution"].includes(frame.target) ? t(`sla.${frame.target}`) : frame.target;
        toast(t(`toast.${frame.event}`, { target, name: rowName(id) }), frame.event === "sla_breached" ? "error" : "warning", 10000);
      }
      break;
    case "agent_presence":
      // Someone came or went: the round robin may have moved conversations around.
      queueView();
      if (SUPERVISING) loadAgents().catch(failed);
      break;
    default:
      break;
  }
}

function onStatus(status) {
  el.liveDot.className = `live-dot live-${status}`;
  el.liveState.dataset.i18n = `live.${status}`;
  el.liveState.textContent = t(`live.${status}`);
}

// ---------------------------------------------------------------- start

async function loadTeams() {
  state.teams = await api("/api/teams");
  if (state.current && state.current.row) renderAssignment(state.current.row);
}

async function loadAgents() {
  state.agents = SUPERVISING ? (await api("/api/agents")).data : [me];
  if (state.current && state.current.row) renderAssignment(state.current.row);
}

window.addEventListener("popstate", () => {
  const view = viewFromUrl();
  if (view !== state.view) {
    state.view = view;
    loadView().catch(failed);
  }
  const match = /^\/inbox\/conversations\/(\d+)/.exec(location.pathname);
  if (match) openConversation(Number(match[1]), { push: false }).catch(failed);
  else closeConversation();
});

onLanguageChange(() => {
  state.messageEls = new Map();
  renderUploads();
  resetViewer();
  renderCounts();
  renderList();
  if (state.current && state.current.row) {
    renderHeader();
    renderDetails();
    renderCustomer();
    renderCommerce();
    renderTimeline();
    renderNlu();
  }
});

async function start() {
  await initStrings(boot);
  renderCounts();
  el.viewTitle.textContent = t(`views.${state.view}`);
  if (boot.conversation) {
    state.current = { id: boot.conversation.id, row: boot.conversation, customer: null, timeline: [], commerce: null };
    renderHeader();
    renderDetails();
  }
  if (boot.not_found) showPane("notfound");
  startApp();
  notify = startNotifications({ me, currentId: () => state.selectedId, controls: $("#notify-controls"),
    open: (id) => openConversation(id).catch(failed) });
  live = connectLive({ onFrame, onStatus });
  initSearch({ open: (id) => openConversation(id) });
  await Promise.all([
    loadView(),
    loadTeams(),
    loadAgents(),
    state.selectedId ? openConversation(state.selectedId, { push: false }) : Promise.resolve(),
  ]);
}

start().catch(failed);
applyStrings();
