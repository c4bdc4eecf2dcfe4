// The reports page's after-sales section: NPS (score, monthly trend, by channel and product, the
// customers' words) and retention (repeat purchases, monthly cohorts, churn, lifetime value, and the
// 90-day repeat rate by NPS, CSAT and support), from /api/reports/nps and /api/reports/retention.
// Shop-wide figures: only the period and the channel apply. Every word comes from i18n (aftersales.*).
import { api } from "/inbox/static/api.js";
import { $, h, show } from "/inbox/static/dom.js";

const charts = {};
let last = null; // the figures drawn last, redrawn when the language changes
const COLORS = { promoter: "#0b7285", passive: "#fdb022", detractor: "#d92d20", line: "#7a5af8", soft: "#66b8c6" };

function groupLabel(t, key) {
  const label = t(`aftersales.segment.${key}`);
  return label === `aftersales.segment.${key}` ? key : label;
}

function stacked(t, groups, labels) {
  return {
    type: "bar",
    data: {
      labels,
      datasets: ["promoters", "passives", "detractors"].map((name) => ({
        label: t(`aftersales.series.${name}`), data: groups.map((g) => g[name]),
        backgroundColor: COLORS[name.slice(0, -1)], stack: "nps", yAxisID: "y",
      })).concat([{ type: "line", label: t("aftersales.series.nps"), data: groups.map((g) => g.nps),
        borderColor: COLORS.line, backgroundColor: COLORS.line, yAxisID: "score", spanGaps: true }]),
    },
    options: { scales: { y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
      score: { position: "right", min: -100, max: 100, grid: { drawOnChartArea: false } } } },
  };
}

function rateBars(t, labels, values, color) {
  return {
    type: "bar",
    data: { labels, datasets: [{ label: t("aftersales.series.repeat"), data: values.map((v) => (v === null ? null : Math.round(v * 1000) / 10)), backgroundColor: color }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, max: 100 } } },
  };
}

function draw(key, empty, config) {
  if (charts[key]) charts[key].destroy();
  charts[key] = empty || !window.Chart ? null : new window.Chart($(`#chart-${key}`), config);
  show($(`#chart-${key}`), !empty);
  show($(`#chart-${key}-empty`), empty);
}

function tile(t, key, value, sub = "") {
  const empty = value === null || value === undefined;
  $(`#kpi-${key}`).textContent = empty ? t("kpi.none") : value;
  $(`#kpi-${key}`).closest(".tile").classList.toggle("tile-empty", empty);
  $(`#kpi-${key}-sub`).textContent = sub;
}

function renderVerbatims(t, items, displayDate) {
  const list = $("#nps-verbatims");
  list.replaceChildren(...items.map((v) => h("li", { class: `verbatim verbatim-${v.category}` },
    h("strong", {}, `${v.score}/10`), " ", h("span", {}, v.comment), " ",
    h("span", { class: "muted small" }, `${displayDate(v.at.slice(0, 10))} · ${v.channel}${v.product_sku ? ` · ${v.product_sku}` : ""}`))));
  show($("#nps-verbatims-empty"), items.length === 0);
}

/** Fetch and draw the section for the page's filters (the period and the channel). */
export async function loadAftersales(params, helpers) {
  const query = new URLSearchParams();
  for (const name of ["from", "to", "channel"]) if (params.get(name)) query.set(name, params.get(name));
  for (const [id, path] of [["#download-nps-csv", "nps.csv"], ["#download-retention-csv", "retention.csv"]]) {
    $(id).href = `/api/reports/${path}${query.toString() ? `?${query}` : ""}`;
  }
  // Buying again takes months: retention covers at least the 12 months up to the period's end.
  const retentionQuery = new URLSearchParams(query);
  const to = query.get("to");
  if (to) {
    const yearBefore = new Date(`${to}T00:00:00Z`);
    yearBefore.setUTCFullYear(yearBefore.getUTCFullYear() - 1);
    yearBefore.setUTCDate(yearBefore.getUTCDate() + 1);
    const floor = yearBefore.toISOString().slice(0, 10);
    if (!query.get("from") || query.get("from") > floor) retentionQuery.set("from", floor);
  }
  $("#download-retention-csv").href = `/api/reports/retention.csv?${retentionQuery}`;
  const [nps, retention] = await Promise.all([api(`/api/reports/nps?${query}`), api(`/api/reports/retention?${retentionQuery}`)]);
  last = { nps, retention };
  redrawAftersales(helpers);
}

/** Draw the figures fetched last again (in the page's current language); nothing before the first load. */
export function redrawAftersales({ t, percent, integer, displayDate, shopDate }) {
  if (!last) return;
  const { nps, retention } = last;
  const day = (moment) => displayDate(shopDate(new Date(moment)));
  $("#retention-period").textContent = t("aftersales.retention_period", {
    from: day(retention.period.from), to: day(new Date(retention.period.to).getTime() - 1) });
  const orNull = (value, format) => (value === null || value === undefined ? null : format(value));
  tile(t, "nps", orNull(nps.nps, (v) => String(Math.round(v))),
    t("aftersales.sub.answers", { count: integer(nps.answers), sent: integer(nps.surveys_sent) }));
  tile(t, "repeat_90d", orNull(retention.repeat_purchase_rate_90d, percent),
    t("aftersales.sub.of", { part: integer(retention.repeat[1].repeated), whole: integer(retention.repeat[1].customers) }));
  tile(t, "churn", orNull(retention.churn_rate, percent), t("aftersales.sub.churn", { days: retention.churn_days }));
  tile(t, "clv", orNull(retention.clv_vnd, (v) => `${integer(Math.round(v))} ₫`),
    t("aftersales.sub.new_customers", { count: integer(retention.new_customers) }));

  const month = (iso) => displayDate(iso, { month: "numeric", year: "numeric" });
  draw("nps_trend", nps.answers === 0, stacked(t, nps.trend, nps.trend.map((g) => month(g.key))));
  draw("nps_channel", nps.by_channel.length === 0, stacked(t, nps.by_channel, nps.by_channel.map((g) => g.key)));
  draw("nps_product", nps.by_product.length === 0, stacked(t, nps.by_product, nps.by_product.map((g) => g.label || g.key)));
  renderVerbatims(t, nps.verbatims, displayDate);

  draw("repeat", retention.new_customers === 0, rateBars(t, retention.repeat.map((r) => t("aftersales.days", { n: r.days })),
    retention.repeat.map((r) => r.rate), COLORS.promoter));
  const longest = Math.max(0, ...retention.cohorts.map((c) => c.retention.length));
  draw("cohorts", retention.new_customers === 0, {
    type: "line",
    data: {
      labels: Array.from({ length: longest }, (_, n) => t("aftersales.month_n", { n })),
      datasets: retention.cohorts.filter((c) => c.customers > 0).map((c, index, all) => ({
        label: month(c.month), data: c.retention.map((v) => (v === null ? null : Math.round(v * 1000) / 10)),
        borderColor: `hsl(${190 + (index * 140) / Math.max(1, all.length)}, 60%, ${30 + (index * 30) / Math.max(1, all.length)}%)`,
      })),
    },
    options: { scales: { y: { beginAtZero: true, max: 100 } } },
  });
  const segments = retention.segments.filter((s) => s.customers > 0);
  draw("segments", segments.length === 0, rateBars(t,
    segments.map((s) => `${t(`aftersales.dimension.${s.dimension}`)}: ${groupLabel(t, s.segment)}`),
    segments.map((s) => s.rate), COLORS.soft));
}
