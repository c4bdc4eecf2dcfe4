// The reports page: filters, KPI tiles and charts, filled from /api/reports/* with the session cookie.
// Charts are drawn by Chart.js, loaded from this server (window.Chart); every word comes from i18n.
import { api, describeError } from "/inbox/static/api.js";
import { $, $$, h, show } from "/inbox/static/dom.js";
import { loadAftersales, redrawAftersales } from "/reports/static/aftersales.js";

const boot = JSON.parse($("#reports-boot").textContent);
const LANGUAGES = ["vi", "en"];
const STORAGE_KEY = "caredesk.inbox.lang"; // shared with the inbox: one choice for both
const LANGUAGE_COOKIE = "caredesk_inbox_lang";
const FILTERS = ["from", "to", "channel", "team", "agent_id"];
const COLORS = {
  primary: "#0b7285",
  primarySoft: "#66b8c6",
  warning: "#f79009",
  danger: "#d92d20",
  violet: "#7a5af8",
  stars: ["#d92d20", "#f79009", "#fdb022", "#66b8c6", "#0b7285"],
};

let language = LANGUAGES.includes(boot.lang) ? boot.lang : "vi";
let options = { channels: [], teams: [], agents: [], timezone: "Asia/Ho_Chi_Minh" };
let report = null;
const charts = {};

// ---------------------------------------------------------------- strings

function t(key, values = {}) {
  const strings = boot.strings[language] || {};
  let text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  for (const [name, value] of Object.entries(values)) text = text.split("{" + name + "}").join(String(value));
  return text;
}

function locale() {
  return language === "vi" ? "vi-VN" : "en-GB";
}

function applyStrings() {
  for (const el of $$("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of $$("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  document.documentElement.lang = language;
  document.title = `${t("reports.title")} · CareDesk`;
  for (const button of $$(".lang-switch [data-lang]")) {
    button.classList.toggle("active", button.dataset.lang === language);
    button.setAttribute("aria-pressed", String(button.dataset.lang === language));
  }
}

function setLanguage(lang, remember = true) {
  if (!LANGUAGES.includes(lang)) return;
  language = lang;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch (_) {
      // private mode: the cookies still carry the choice
    }
    for (const path of ["/inbox", "/reports"]) {
      document.cookie = `${LANGUAGE_COOKIE}=${lang}; path=${path}; max-age=31536000; samesite=lax`;
    }
  }
  applyStrings();
  renderScope();
  if (report) render(report);
}

function storedLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch (_) {
    return null;
  }
}

// ---------------------------------------------------------------- formatting

function percent(value) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(value);
}

function decimal(value, digits = 2) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: 1, maximumFractionDigits: digits }).format(value);
}

function integer(value) {
  return new Intl.NumberFormat(locale()).format(value);
}

/** Business seconds as "12 phút 30 giây" / "1 h 5 min". */
function duration(seconds) {
  const total = Math.round(seconds);
  if (total < 60) return t("duration.seconds", { s: total });
  if (total < 3600) {
    const m = Math.floor(total / 60);
    const s = total % 60;
    return s ? t("duration.minutes_seconds", { m, s }) : t("duration.minutes", { m });
  }
  if (total < 86400) {
    const h = Math.floor(total / 3600);
    const m = Math.round((total % 3600) / 60);
    return m ? t("duration.hours_minutes", { h, m }) : t("duration.hours", { h });
  }
  return t("duration.days_hours", { d: Math.floor(total / 86400), h: Math.round((total % 86400) / 3600) });
}

/** The shop-local calendar date of a moment, as YYYY-MM-DD. */
function shopDate(moment) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: options.timezone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(moment);
  const get = (type) => parts.find((part) => part.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

function displayDate(isoDate, style = { day: "numeric", month: "numeric", year: "numeric" }) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), { ...style, timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
}

function reasonLabel(reason) {
  const key = `reason.${reason}`;
  const label = t(key);
  return label === key ? reason : label;
}

// ---------------------------------------------------------------- filters

function filterParams() {
  const params = new URLSearchParams();
  const form = $("#filters");
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function fillSelect(select, items, current) {
  select.replaceChildren(h("option", { value: "", "data-i18n": "filters.all" }, t("filters.all")));
  for (const [value, label] of items) select.append(h("option", { value: String(value) }, label));
  if (current && items.some(([value]) => String(value) === current)) select.value = current;
}

function readUrlFilters() {
  const params = new URLSearchParams(location.search);
  const form = $("#filters");
  for (const name of FILTERS) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }
  return params;
}

function updateCsvLink(params) {
  const query = params.toString();
  $("#download-csv").href = `/api/reports/export.csv${query ? `?${query}` : ""}`;
}

// ---------------------------------------------------------------- tiles

function tile(key, value, sub = "") {
  const el = $(`#kpi-${key}`);
  const empty = value === null || value === undefined;
  el.textContent = empty ? t("kpi.none") : value;
  el.title = empty ? t("kpi.none_title") : "";
  el.closest(".tile").classList.toggle("tile-empty", empty);
  $(`#kpi-${key}-sub`).textContent = sub;
}

/** Under the first-response median: its p90, or, when the median is 0 business seconds but the
 * customers did wait on the clock (answers given outside opening hours), how long they waited. */
function frtSub(data) {
  if (!data.counts.first_responses) return "";
  if (data.frt_median_s === 0 && data.frt_wall_median_s > 0) {
    return t("sub.outside_hours", { value: duration(data.frt_wall_median_s) });
  }
  return data.frt_p90_s === null ? "" : t("sub.p90", { value: duration(data.frt_p90_s) });
}

function renderTiles(data) {
  const c = data.counts;
  const delivery = data.after_delivery;
  const orNull = (value, format) => (value === null ? null : format(value));
  tile("conversations", integer(c.conversations), t("sub.escalated", { count: integer(c.escalated) }));
  tile("csat", orNull(data.csat, percent), t("sub.ratings", { count: integer(c.csat_ratings) }));
  tile("avg_rating", orNull(data.avg_rating, (v) => `${decimal(v)} ★`), t("sub.ratings", { count: integer(c.csat_ratings) }));
  tile("frt", c.first_responses ? orNull(data.frt_median_s, duration) : null, frtSub(data));
  tile("resolution", orNull(data.resolution_median_s, duration),
    data.resolution_p90_s === null ? "" : t("sub.p90", { value: duration(data.resolution_p90_s) }));
  tile("sla_compliance", orNull(data.sla_compliance, percent),
    t("sub.breached", { count: integer(c.sla_breached), whole: integer(c.sla_measured) }));
  tile("containment_rate", orNull(data.containment_rate, percent),
    t("sub.of", { part: integer(c.contained), whole: integer(c.conversations) }));
  tile("recontact_rate_7d", orNull(data.recontact_rate_7d, percent),
    t("sub.of", { part: integer(c.recontacted_7d), whole: integer(c.recontact_base) }));
  tile("csat_after_complaint", orNull(data.csat_after_complaint, percent),
    t("sub.complaints", { count: integer(c.complaints) }));
  tile("delivery_response_rate", orNull(delivery.response_rate, percent),
    t("sub.requests", { part: integer(delivery.requests_answered), whole: integer(delivery.requests_sent) }));
}

// ---------------------------------------------------------------- charts

function bucketLabel(bucket, granularity) {
  if (granularity === "day") return displayDate(bucket.start, { day: "numeric", month: "numeric" });
  if (granularity === "week") return t("week_of", { date: displayDate(bucket.start, { day: "numeric", month: "numeric" }) });
  if (granularity === "month") return displayDate(bucket.start, { month: "numeric", year: "numeric" });
  return bucket.start.slice(0, 4);
}

function minutes(seconds) {
  return seconds === null ? null : Math.round((seconds / 60) * 10) / 10;
}

function chartConfigs(data) {
  const stars = [1, 2, 3, 4, 5];
  const horizontal = (items, color) => ({
    type: "bar",
    data: {
      labels: items.map((item) => reasonLabel(item.reason)),
      datasets: [{ label: t("series.count"), data: items.map((item) => item.count), backgroundColor: color }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  return {
    volume: {
      empty: data.counts.conversations === 0,
      config: {
        type: "bar",
        data: {
          labels: data.volume.buckets.map((bucket) => bucketLabel(bucket, data.volume.granularity)),
          datasets: [
            { label: t("series.conversations"), data: data.volume.buckets.map((b) => b.conversations), backgroundColor: COLORS.primarySoft },
            { label: t("series.escalated"), data: data.volume.buckets.map((b) => b.escalated), backgroundColor: COLORS.warning },
          ],
        },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      },
    },
    ratings: {
      empty: data.counts.csat_ratings === 0 && data.after_delivery.ratings === 0,
      config: {
        type: "bar",
        data: {
          labels: stars.map((n) => t("stars", { n })),
          datasets: [
            { label: t("series.csat"), data: stars.map((n) => data.rating_distribution[n]), backgroundColor: COLORS.primary },
            { label: t("series.delivery"), data: stars.map((n) => data.after_delivery.distribution[n]), backgroundColor: COLORS.violet },
          ],
        },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      },
    },
    times: {
      empty: data.frt_median_s === null && data.resolution_median_s === null,
      config: {
        type: "bar",
        data: {
          labels: [t("series.frt"), t("series.resolution")],
          datasets: [
            { label: t("series.median"), data: [minutes(data.frt_median_s), minutes(data.resolution_median_s)], backgroundColor: COLORS.primary },
            { label: t("series.p90"), data: [minutes(data.frt_p90_s), minutes(data.resolution_p90_s)], backgroundColor: COLORS.primarySoft },
          ],
        },
        options: { scales: { y: { beginAtZero: true } } },
      },
    },
    complaints: { empty: data.top_complaint_reasons.length === 0, config: horizontal(data.top_complaint_reasons, COLORS.danger) },
    escalations: { empty: data.escalations_by_reason.length === 0, config: horizontal(data.escalations_by_reason, COLORS.warning) },
  };
}

function renderCharts(data) {
  const Chart = window.Chart;
  if (!Chart) return;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#475467";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation.duration = 250;
  Chart.defaults.datasets.bar.maxBarThickness = 36;
  for (const [key, { empty, config }] of Object.entries(chartConfigs(data))) {
    if (charts[key]) charts[key].destroy();
    // Nothing to draw: the "no data yet" message alone, not empty axes that look like zeros.
    charts[key] = empty ? null : new Chart($(`#chart-${key}`), config);
    show($(`#chart-${key}`), !empty);
    show($(`#chart-${key}-empty`), empty);
  }
}

// ---------------------------------------------------------------- loading

function renderScope() {
  const scope = $("#scope-text");
  if (!scope) return;
  const teams = boot.agent.teams || [];
  scope.textContent = teams.length ? t("reports.scope_teams", { teams: teams.join(", ") }) : t("reports.scope_none");
}

function render(data) {
  const start = shopDate(new Date(data.period.from));
  const end = shopDate(new Date(new Date(data.period.to).getTime() - 1));
  $("#period-text").removeAttribute("data-i18n");
  $("#period-text").textContent = t("reports.period", { from: displayDate(start), to: displayDate(end) });
  renderTiles(data);
  renderCharts(data);
  redrawAftersales({ t, percent, integer, displayDate, shopDate });
  document.body.dataset.loaded = "true";
}

async function load() {
  const params = filterParams();
  updateCsvLink(params);
  show($("#report-error"), false);
  $("#apply").disabled = true;
  try {
    report = await api(`/api/reports/summary?${params}`);
    const form = $("#filters");
    // Show the period the server chose when none was given.
    if (!form.elements.from.value) form.elements.from.value = shopDate(new Date(report.period.from));
    if (!form.elements.to.value) form.elements.to.value = shopDate(new Date(new Date(report.period.to).getTime() - 1));
    updateCsvLink(filterParams());
    render(report);
    await loadAftersales(filterParams(), { t, percent, integer, displayDate, shopDate });
  } catch (error) {
    $("#report-error").textContent = t("reports.error", { reason: describeError(error) });
    show($("#report-error"), true);
  } finally {
    $("#apply").disabled = false;
  }
}

async function start() {
  const stored = storedLanguage();
  for (const button of $$(".lang-switch [data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  if (stored && LANGUAGES.includes(stored) && stored !== language) setLanguage(stored, false);
  else applyStrings();
  if (!boot.allowed) return;

  const wanted = readUrlFilters();
  try {
    options = await api("/api/reports/options");
  } catch (error) {
    $("#report-error").textContent = t("reports.error", { reason: describeError(error) });
    show($("#report-error"), true);
    return;
  }
  fillSelect($("#f-channel"), options.channels.map((name) => [name, name]), wanted.get("channel"));
  fillSelect($("#f-team"), options.teams.map((name) => [name, name]), wanted.get("team"));
  fillSelect($("#f-agent"), options.agents.map((agent) => [agent.id, agent.name]), wanted.get("agent_id"));

  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = filterParams();
    history.replaceState(null, "", `${location.pathname}${params.toString() ? `?${params}` : ""}`);
    load();
  });
  await load();
}

start();
