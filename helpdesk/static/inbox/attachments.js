// Attachments in the inbox: how each kind shows in the thread (thumbnail, player, download, map
// link, contact), the image viewer, the customer panel's list, and uploading from the composer.
// Names and reasons come from the network and go in as text nodes only (see dom.js).
import { csrfToken, toLogin } from "./api.js";
import { h } from "./dom.js";
import { locale, t } from "./i18n.js";

const ICONS = { image: "🖼", sticker: "🙂", video: "🎬", audio: "🎵", file: "📄", location: "📍", contact: "👤" };
const KINDS = Object.keys(ICONS);

/** The kind as the API names it (older messages stored the platform's own words). */
export function kindOf(attachment) {
  const kind = attachment.kind || attachment.type;
  if (KINDS.includes(kind)) return kind;
  const mime = attachment.mime_type || "";
  if (mime.startsWith("image/")) return "image";
  if (mime.startsWith("video/")) return "video";
  if (mime.startsWith("audio/")) return "audio";
  return "file";
}

/** Where an agent downloads the stored file: the API's own address (never a platform's link, which
 * expires and which the page's policy would refuse anyway). */
export function fileUrl(attachment) {
  if (attachment.status === "pending" || attachment.status === "failed") return null;
  if (attachment.url && attachment.url.startsWith("/") && !attachment.url.startsWith("//")) return attachment.url;
  return attachment.id !== undefined && attachment.id !== null ? `/api/attachments/${attachment.id}` : null;
}

export function formatSize(bytes) {
  const size = Number(bytes);
  if (!Number.isFinite(size) || size <= 0) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value)} ${units[unit]}`;
}

function displayName(attachment) {
  return attachment.name || attachment.file_name || t(`attachment.kind.${kindOf(attachment)}`);
}

/** A location's coordinates: its own fields, or the RFC 5870 geo: URI it came as. */
export function coordinates(attachment) {
  const lat = Number(attachment.latitude);
  const lon = Number(attachment.longitude);
  if (attachment.latitude != null && attachment.longitude != null && Number.isFinite(lat) && Number.isFinite(lon)) {
    return { lat, lon };
  }
  const match = /^geo:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)/.exec(attachment.url || attachment.geo || "");
  return match ? { lat: Number(match[1]), lon: Number(match[2]) } : null;
}

function mapUrl({ lat, lon }) {
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
}

function icon(kind) {
  return h("span", { class: "att-icon", "aria-hidden": "true" }, ICONS[kind] || ICONS.file);
}

// ---------------------------------------------------------------- the viewer (lightbox)

const viewer = { node: null, image: null, caption: null, download: null, items: [], index: 0, opener: null };

function buildViewer() {
  const close = h("button", { type: "button", class: "viewer-close", "aria-label": t("attachment.close") }, "×");
  const prev = h("button", { type: "button", class: "viewer-nav viewer-prev", "aria-label": t("attachment.previous") }, "‹");
  const next = h("button", { type: "button", class: "viewer-nav viewer-next", "aria-label": t("attachment.next") }, "›");
  viewer.image = h("img", { class: "viewer-image", alt: "" });
  viewer.caption = h("span", { class: "viewer-caption" });
  viewer.download = h("a", { class: "btn btn-small viewer-download", download: "" }, t("attachment.download"));
  viewer.node = h("div", { class: "viewer", id: "viewer", role: "dialog", "aria-modal": "true",
    "aria-label": t("attachment.viewer"), hidden: true },
  close, prev, h("figure", { class: "viewer-figure" }, viewer.image,
    h("figcaption", {}, viewer.caption, viewer.download)), next);
  close.addEventListener("click", closeViewer);
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  viewer.node.addEventListener("click", (event) => {
    if (event.target === viewer.node) closeViewer();
  });
  viewer.node.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      closeViewer();
    } else if (event.key === "ArrowLeft") step(-1);
    else if (event.key === "ArrowRight") step(1);
  });
  document.body.appendChild(viewer.node);
}

function showItem() {
  const item = viewer.items[viewer.index];
  viewer.image.src = item.url;
  viewer.image.alt = item.name;
  viewer.caption.textContent = viewer.items.length > 1
    ? `${item.name} (${viewer.index + 1}/${viewer.items.length})` : item.name;
  viewer.download.href = item.url;
  viewer.download.setAttribute("download", item.name);
  for (const nav of viewer.node.querySelectorAll(".viewer-nav")) nav.hidden = viewer.items.length < 2;
}

function step(delta) {
  if (viewer.items.length < 2) return;
  viewer.index = (viewer.index + delta + viewer.items.length) % viewer.items.length;
  showItem();
}

/** Open the viewer on one image among ``items`` ([{url, name}]), e.g. every image of the conversation. */
export function openViewer(items, index = 0) {
  if (!items.length) return;
  if (!viewer.node) buildViewer();
  viewer.items = items;
  viewer.index = Math.max(0, Math.min(index, items.length - 1));
  viewer.opener = document.activeElement;
  showItem();
  viewer.node.hidden = false;
  viewer.node.querySelector(".viewer-close").focus();
}

export function closeViewer() {
  if (!viewer.node || viewer.node.hidden) return false;
  viewer.node.hidden = true;
  viewer.image.removeAttribute("src");
  if (viewer.opener && viewer.opener.focus) viewer.opener.focus();
  return true;
}

/** Forget the viewer's elements (built with the strings of the language at the time). */
export function resetViewer() {
  closeViewer();
  if (viewer.node) viewer.node.remove();
  viewer.node = null;
}

export function viewerOpen() {
  return Boolean(viewer.node && !viewer.node.hidden);
}

// ---------------------------------------------------------------- in the thread

/** Images the viewer can page through: every stored image or sticker of ``messages``. */
export function viewableImages(messages) {
  const items = [];
  for (const message of messages) {
    for (const attachment of message.attachments || []) {
      const kind = kindOf(attachment);
      const url = fileUrl(attachment);
      if ((kind === "image" || kind === "sticker") && url) {
        items.push({ url, name: displayName(attachment), key: attachment.id || url });
      }
    }
  }
  return items;
}

function thumbnail(attachment, url, onOpen) {
  const kind = kindOf(attachment);
  const name = displayName(attachment);
  const button = h("button", { type: "button", class: `att att-thumb att-${kind}`, title: name,
    "aria-label": t("attachment.open", { name }), dataset: { kind } });
  const img = h("img", { src: attachment.thumbnail_url || url, alt: name, loading: "lazy" });
  // A thumbnail that cannot load (not made yet, gone) falls back to an icon, never a broken image.
  img.addEventListener("error", () => img.replaceWith(icon(kind), h("span", { class: "att-name" }, name)), { once: true });
  button.appendChild(img);
  button.addEventListener("click", () => onOpen(attachment.id || url));
  return button;
}

/** One attachment as it shows in a message: ``onOpen(key)`` opens the viewer on an image. */
export function attachmentElement(attachment, onOpen) {
  const kind = kindOf(attachment);
  const name = displayName(attachment);
  if (attachment.error || attachment.status === "failed") {
    const reason = attachment.error || t("attachment.unknown_error");
    return h("div", { class: `att att-failed att-${kind}`, role: "note", dataset: { kind } }, icon(kind),
      h("span", { class: "att-name" }, name),
      h("span", { class: "att-reason" }, t("attachment.failed", { reason })));
  }
  if (kind === "location") {
    const point = coordinates(attachment);
    const label = point ? `${point.lat.toFixed(5)}, ${point.lon.toFixed(5)}` : name;
    return h("div", { class: "att att-location", dataset: { kind } }, icon(kind),
      point ? h("a", { href: mapUrl(point), target: "_blank", rel: "noopener noreferrer" },
        attachment.name ? `${attachment.name} · ${label}` : t("attachment.location", { place: label }))
        : h("span", {}, label));
  }
  if (kind === "contact") {
    const phone = attachment.phone || "";
    return h("div", { class: "att att-contact", dataset: { kind } }, icon(kind),
      h("span", { class: "att-name" }, attachment.name || t("attachment.kind.contact")),
      phone && h("a", { class: "att-phone", href: `tel:${phone.replace(/[^\d+]/g, "")}` }, phone));
  }
  const url = fileUrl(attachment);
  if (!url) {
    // being fetched from the platform (the thread reloads when it is stored), or a message from
    // before CareDesk kept files
    const label = attachment.status === "pending" ? "attachment.pending" : "attachment.not_stored";
    return h("div", { class: `att att-pending att-${kind}`, dataset: { kind, status: attachment.status || "" } },
      icon(kind), h("span", { class: "att-name" }, t(label, { name })));
  }
  if (kind === "image" || kind === "sticker") return thumbnail(attachment, url, onOpen);
  const size = formatSize(attachment.size);
  const download = h("a", { class: "att-download", href: url, download: name },
    t("attachment.download"), size ? ` · ${size}` : "");
  if (kind === "video") {
    return h("div", { class: "att att-video", dataset: { kind } },
      h("video", { controls: true, preload: "metadata", src: url, poster: attachment.thumbnail_url || null,
        "aria-label": name }),
      h("div", { class: "att-caption small" }, h("span", { class: "att-name" }, name), " ", download));
  }
  if (kind === "audio") {
    return h("div", { class: "att att-audio", dataset: { kind } },
      h("audio", { controls: true, preload: "metadata", src: url, "aria-label": name }),
      h("div", { class: "att-caption small" }, h("span", { class: "att-name" }, name), " ", download));
  }
  return h("a", { class: "att att-file", href: url, download: name, dataset: { kind } }, icon(kind),
    h("span", { class: "att-name" }, name), size && h("span", { class: "muted small" }, size));
}

/** The attachments block of a message in the thread. */
export function attachmentsElement(message, onOpen) {
  const attachments = message.attachments || [];
  if (!attachments.length) return null;
  return h("div", { class: "attachments" }, attachments.map((attachment) => attachmentElement(attachment, onOpen)));
}

// ---------------------------------------------------------------- the customer panel's list

/** Every attachment of the conversation, newest first, for the customer panel. */
export function attachmentList(messages, onOpen, when) {
  const rows = [];
  for (const message of messages) {
    for (const attachment of message.attachments || []) rows.push({ message, attachment });
  }
  if (!rows.length) return [h("p", { class: "muted" }, t("attachment.none"))];
  rows.reverse();
  return [h("ul", { class: "att-list" }, rows.map(({ message, attachment }) => {
    const kind = kindOf(attachment);
    const name = displayName(attachment);
    const url = fileUrl(attachment);
    const meta = h("span", { class: "muted small" },
      [t(`attachment.kind.${kind}`), formatSize(attachment.size), when(message)].filter(Boolean).join(" · "));
    let main;
    if (!url || kind === "location" || kind === "contact") {
      main = attachmentElement(attachment, onOpen);
    } else if (kind === "image" || kind === "sticker") {
      main = h("button", { type: "button", class: "att-list-open", onclick: () => onOpen(attachment.id || url) },
        icon(kind), h("span", { class: "att-name" }, name));
    } else {
      main = h("a", { class: "att-list-open", href: url, download: name }, icon(kind), h("span", { class: "att-name" }, name));
    }
    return h("li", { class: "att-list-item", dataset: { kind } }, main, meta);
  }))];
}

// ---------------------------------------------------------------- uploading

/**
 * POST a file (and optional text) as multipart/form-data with the session cookie and CSRF header.
 * Resolves with the created message; rejects with {status, detail}. ``onProgress(fraction)``.
 */
export function uploadFile(path, file, text, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image");
    if (text) form.append("text", text);
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.withCredentials = true;
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(request.responseText);
      } catch (_) {
        data = null;
      }
      if (request.status === 401) {
        toLogin(true);
        reject({ status: 401, detail: "session expired" });
      } else if (request.status >= 200 && request.status < 300) {
        resolve(data);
      } else {
        let detail = data && data.detail;
        if (Array.isArray(detail)) detail = detail.map((item) => item.msg).join("; ");
        reject({ status: request.status, detail: detail || uploadReason(request.status) });
      }
    });
    request.addEventListener("error", () => reject({ status: 0, detail: t("upload.network") }));
    request.addEventListener("abort", () => reject({ status: 0, detail: t("upload.cancelled") }));
    request.send(form);
  });
}

function uploadReason(status) {
  if (status === 413) return t("upload.too_large");
  if (status === 415) return t("upload.unsupported");
  return t("upload.failed_status", { status });
}
