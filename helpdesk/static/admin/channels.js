// The channels page: which channels are on, the platform's answer to the credentials check, the last
// webhook received and the last sending error, and the webhook URL to register. No secret is shown.
import { api, fill, failed, formatTime, h, onLanguageChange, t } from "/admin/static/common.js";
import { loadZnsMapping } from "/admin/static/care_zns.js";

const body = document.getElementById("admin-body");
let status = null;

function row(labelKey, value) {
  return [h("dt", {}, t(labelKey)), h("dd", {}, value)];
}

function channelCard(channel) {
  const webhook = !channel.needs_webhook ? h("span", { class: "muted" }, t("admin.channels.no_webhook"))
    : channel.webhook_url ? h("code", { class: "admin-code webhook-url" }, channel.webhook_url)
      : h("span", { class: "muted" }, t("admin.channels.no_base_url"));
  const credentials = channel.credentials ? t(`admin.channels.credentials_${channel.credentials}`) : t("admin.channels.credentials_none");
  return h("li", { class: `card admin-item${channel.enabled ? "" : " admin-item-off"}`, dataset: { channel: channel.name } },
    h("div", { class: "admin-item-head" }, h("strong", {}, t(`admin.channel.${channel.name}`)),
      h("span", { class: `badge ${channel.enabled ? "badge-on" : "badge-off"}` },
        t(channel.enabled ? "admin.channels.on" : "admin.channels.off"))),
    h("dl", { class: "admin-facts" },
      row("admin.channels.credentials", credentials),
      row("admin.channels.last_webhook", channel.needs_webhook ? formatTime(channel.last_webhook_at) : "—"),
      row("admin.channels.last_error", channel.last_error
        ? h("span", { class: "admin-error" }, `${formatTime(channel.last_error_at)} · ${channel.last_error}`)
        : t("admin.channels.no_error")),
      row("admin.channels.webhook_url", webhook)));
}

function render() {
  if (!status) return;
  fill(body,
    status.public_base_url ? null : h("p", { class: "card admin-note" }, t("admin.channels.base_url_hint")),
    h("ul", { class: "admin-list", id: "channel-list" }, status.data.map(channelCard)));
}

async function load() {
  status = await api("/api/admin/channels");
  render();
}

onLanguageChange(render);
load().then(loadZnsMapping).catch((error) => failed(error));
