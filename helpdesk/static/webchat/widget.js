/*
 * CareDesk web chat widget.
 *
 * Embed on a shop's page with one tag:
 *   <script src="https://caredesk.example.vn/webchat/widget.js" defer></script>
 * Options (attributes on that tag): data-lang="en" for English (Vietnamese by default),
 * data-title="..." for the panel title, data-color="#0b7285" for the accent colour.
 *
 * It talks only to the server it was loaded from: POST /webchat/session once per browser, then a
 * WebSocket at /webchat/ws; a photo or file goes up with POST /webchat/attachments?token=...
 * (multipart). Every piece of text from the network is rendered with textContent, and only http(s)
 * links from it become href/src.
 */
(function () {
  "use strict";

  if (window.CareDeskWebchat) return; // the tag was included twice

  var script = document.currentScript;
  if (!script) {
    // currentScript is null when loaded by a module or injected oddly; find our tag by its path.
    var tags = document.querySelectorAll('script[src*="/webchat/widget.js"]');
    script = tags[tags.length - 1];
  }
  if (!script) return;

  var base = new URL(script.src, window.location.href);
  var ORIGIN = base.origin;
  var SOCKET_URL = (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + "/webchat/ws";
  var STORAGE_KEY = "caredesk.webchat:" + ORIGIN;
  var LANG = /^en/i.test(script.getAttribute("data-lang") || "") ? "en" : "vi";
  var ACCENT = script.getAttribute("data-color") || "#c2410c";

  var TEXTS = {
    vi: {
      launcher: "Chat với shop",
      title: "Hỗ trợ khách hàng",
      subtitle: "Thường trả lời trong vài phút",
      placeholder: "Nhập tin nhắn…",
      send: "Gửi",
      close: "Đóng",
      welcome: "Xin chào! Shop có thể giúp gì cho bạn?",
      connecting: "Đang kết nối…",
      offline: "Mất kết nối, đang thử lại…",
      unavailable: "Kênh chat đang tạm tắt.",
      typing: "Đang soạn tin",
      notSent: "Chưa gửi được",
      agent: "Nhân viên",
      bot: "Trợ lý ảo",
      attach: "Gửi ảnh, video hoặc tệp",
      camera: "Chụp ảnh",
      uploading: "Đang gửi {name}…",
      uploadFailed: "Không gửi được {name}: {reason}",
      tooLarge: "tệp quá lớn",
      unsupported: "loại tệp không được hỗ trợ",
      network: "mất kết nối mạng",
      serverError: "lỗi máy chủ ({status})",
      download: "Tải xuống",
      photo: "Ảnh",
      file: "Tệp",
      location: "Vị trí: {place}",
      fileFailed: "Không nhận được tệp: {reason}",
    },
    en: {
      launcher: "Chat with us",
      title: "Customer support",
      subtitle: "We usually reply within minutes",
      placeholder: "Type a message…",
      send: "Send",
      close: "Close",
      welcome: "Hi! How can we help you?",
      connecting: "Connecting…",
      offline: "Connection lost, retrying…",
      unavailable: "Chat is not available right now.",
      typing: "Typing",
      notSent: "Not sent",
      agent: "Agent",
      bot: "Assistant",
      attach: "Send a photo, video or file",
      camera: "Take a photo",
      uploading: "Sending {name}…",
      uploadFailed: "Could not send {name}: {reason}",
      tooLarge: "the file is too large",
      unsupported: "this file type is not supported",
      network: "the connection failed",
      serverError: "server error ({status})",
      download: "Download",
      photo: "Photo",
      file: "File",
      location: "Location: {place}",
      fileFailed: "File not received: {reason}",
    },
  };
  var T = TEXTS[LANG];
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] != null ? String(values[name]) : whole;
    });
  }
  var TITLE = script.getAttribute("data-title") || T.title;

  var PING_MS = 25000;
  var TYPING_MAX_MS = 20000;
  var BACKOFF_MAX_MS = 30000;

  // ---------------------------------------------------------------------------------------------
  // Storage (localStorage may be unavailable: private modes, blocked third-party storage)
  // ---------------------------------------------------------------------------------------------
  var memoryStore = {};
  function loadSession() {
    try {
      var raw = window.localStorage.getItem(STORAGE_KEY);
      return raw ? JSON.parse(raw) : memoryStore.session || null;
    } catch (e) {
      return memoryStore.session || null;
    }
  }
  function saveSession(session) {
    memoryStore.session = session;
    try {
      if (session) window.localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      else window.localStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* memory only */
    }
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------
  var state = {
    session: loadSession(),
    ws: null,
    connecting: false, // a session request is under way; the socket opens when it answers
    isOpen: false,
    stopped: false,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    typingTimer: null,
    pending: [], // frames sent (or waiting to be) that the server has not acknowledged yet
    shown: {}, // message id -> its row element
    uploads: [], // rows of files being sent, kept across a history redraw
    uploaded: {}, // attachment id/url -> the row that showed it when its upload answered
    unread: 0,
  };

  // ---------------------------------------------------------------------------------------------
  // DOM (inside a shadow root, so the shop's CSS and ours never meet)
  // ---------------------------------------------------------------------------------------------
  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}",
    ".cdw-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;display:flex;align-items:center;gap:8px;",
    "padding:0 18px;height:52px;border:0;border-radius:26px;background:var(--cdw-accent);color:#fff;font-size:15px;",
    "font-weight:600;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25)}",
    ".cdw-launcher:focus-visible,.cdw-btn:focus-visible,.cdw-send:focus-visible,.cdw-close:focus-visible{outline:3px solid #1c7ed6;outline-offset:2px}",
    ".cdw-badge{min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#fff;color:var(--cdw-accent);",
    "font-size:12px;line-height:20px;text-align:center}",
    ".cdw-badge[hidden]{display:none}",
    ".cdw-panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:360px;height:540px;",
    "max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;border-radius:14px;",
    "overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.28);color:#1f2328;font-size:14px}",
    ".cdw-panel[hidden]{display:none}",
    "@media (max-width:480px){.cdw-panel{right:0;left:0;bottom:0;width:100%;height:100%;max-height:100%;border-radius:0}",
    // the open panel fills a phone's screen: the launcher would cover its send button (the header closes it)
    ".cdw-launcher[aria-expanded=true]{display:none}",
    // thumb-sized (44 px) controls, and 16 px text in the input so a phone does not zoom in on focus
    ".cdw-close,.cdw-tool,.cdw-send,.cdw-btn,.cdw-input{min-height:44px;min-width:44px}.cdw-input{font-size:16px}}",
    ".cdw-header{display:flex;align-items:center;gap:10px;padding:12px 14px;background:var(--cdw-accent);color:#fff}",
    ".cdw-heading{flex:1;min-width:0}",
    ".cdw-title{font-size:16px;font-weight:700;margin:0}",
    ".cdw-subtitle{font-size:12px}", // full white: faded, it fell under 4.5:1 on the accent colour
    ".cdw-close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:4px 8px}",
    ".cdw-status{padding:6px 14px;font-size:12px;background:#fff3bf;color:#5c3c00}",
    ".cdw-status[hidden]{display:none}",
    ".cdw-log{flex:1;overflow-y:auto;padding:14px;background:#f6f7f9;display:flex;flex-direction:column;gap:8px}",
    ".cdw-msg{display:flex;flex-direction:column;max-width:82%}",
    ".cdw-msg.cdw-customer{align-self:flex-end;align-items:flex-end}",
    ".cdw-msg.cdw-bot,.cdw-msg.cdw-agent,.cdw-msg.cdw-welcome{align-self:flex-start;align-items:flex-start}",
    ".cdw-msg.cdw-system{align-self:center;max-width:90%}",
    ".cdw-who{font-size:11px;color:#667085;margin:0 4px 2px}",
    ".cdw-bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.4}",
    ".cdw-customer .cdw-bubble{background:var(--cdw-accent);color:#fff;border-bottom-right-radius:4px}",
    ".cdw-bot .cdw-bubble,.cdw-welcome .cdw-bubble{background:#fff;border:1px solid #e4e7ec;border-bottom-left-radius:4px}",
    ".cdw-agent .cdw-bubble{background:#e7f5ff;border:1px solid #a5d8ff;border-bottom-left-radius:4px}",
    ".cdw-system .cdw-bubble{background:transparent;color:#667085;font-size:12px;text-align:center}",
    ".cdw-pending .cdw-bubble{opacity:.6}",
    ".cdw-failed .cdw-bubble{background:#fff5f5;color:#c92a2a;border:1px solid #ffa8a8}",
    ".cdw-note{font-size:11px;color:#c92a2a;margin:2px 4px 0}",
    ".cdw-buttons{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}",
    ".cdw-btn{border:1px solid var(--cdw-accent);background:#fff;color:var(--cdw-accent);border-radius:16px;",
    "padding:5px 12px;font-size:13px;cursor:pointer}",
    ".cdw-btn:hover:not(:disabled){background:var(--cdw-accent);color:#fff}",
    ".cdw-btn:disabled{opacity:.45;cursor:default}",
    ".cdw-typing{align-self:flex-start;display:flex;gap:4px;padding:10px 12px;background:#fff;border:1px solid #e4e7ec;",
    "border-radius:14px;border-bottom-left-radius:4px}",
    ".cdw-typing[hidden]{display:none}",
    ".cdw-typing span{width:7px;height:7px;border-radius:50%;background:#98a2b3;animation:cdw-bounce 1.2s infinite}",
    ".cdw-typing span:nth-child(2){animation-delay:.15s}.cdw-typing span:nth-child(3){animation-delay:.3s}",
    "@keyframes cdw-bounce{0%,60%,100%{transform:translateY(0)}30%{transform:translateY(-4px)}}",
    "@media (prefers-reduced-motion:reduce){.cdw-typing span{animation:none}}",
    ".cdw-form{display:flex;gap:8px;padding:10px;border-top:1px solid #e4e7ec;background:#fff}",
    ".cdw-input{flex:1;min-width:0;border:1px solid #d0d5dd;border-radius:20px;padding:9px 14px;font-size:14px;color:#1f2328}",
    ".cdw-input:focus{outline:none;border-color:var(--cdw-accent)}",
    ".cdw-send{border:0;border-radius:20px;padding:0 16px;background:var(--cdw-accent);color:#fff;font-weight:600;cursor:pointer}",
    ".cdw-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".cdw-tool{flex:0 0 auto;width:38px;height:38px;border:1px solid #d0d5dd;border-radius:50%;background:#fff;",
    "color:#475467;font-size:18px;line-height:1;cursor:pointer;display:flex;align-items:center;justify-content:center}",
    ".cdw-tool:hover{border-color:var(--cdw-accent);color:var(--cdw-accent)}",
    ".cdw-tool:focus-visible{outline:3px solid #1c7ed6;outline-offset:2px}",
    ".cdw-tool[hidden],.cdw-fileinput{display:none}",
    ".cdw-files{display:flex;flex-direction:column;gap:4px;margin-top:4px;max-width:100%}",
    ".cdw-customer .cdw-files{align-items:flex-end}",
    ".cdw-img{display:block;max-width:min(220px,100%);max-height:220px;border-radius:10px;border:1px solid #e4e7ec;",
    "background:#eef1f5;object-fit:cover}",
    ".cdw-file{display:inline-flex;align-items:center;gap:6px;max-width:100%;padding:7px 10px;border:1px solid #d0d5dd;",
    "border-radius:10px;background:#fff;color:#1f2328;text-decoration:none;font-size:13px;overflow-wrap:anywhere}",
    ".cdw-file:hover{border-color:var(--cdw-accent)}",
    ".cdw-file-failed{border-style:dashed;border-color:#ffa8a8;color:#c92a2a;background:#fff5f5}",
    ".cdw-progress{width:160px;max-width:100%;height:4px;border-radius:2px;background:#e4e7ec;overflow:hidden;margin-top:4px}",
    ".cdw-progress>span{display:block;height:100%;width:0;background:var(--cdw-accent);transition:width .15s}",
  ].join("");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  var ui = {};

  // Icons drawn as SVG (not emoji, which some systems lack a font for).
  var ICON_PAPERCLIP = "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5";
  var ICON_CAMERA = "M23 19a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4l2-3h6l2 3h4a2 2 0 0 1 2 2z" +
    "M12 17a4 4 0 1 0 0-8 4 4 0 0 0 0 8z";
  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
    svg.setAttribute("aria-hidden", "true");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }

  function buildUi() {
    var host = el("div");
    host.id = "caredesk-webchat";
    var root = host.attachShadow({ mode: "open" });
    root.host.style.setProperty("--cdw-accent", ACCENT);

    var style = el("style");
    style.textContent = CSS;
    root.appendChild(style);

    var launcher = el("button", "cdw-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-haspopup", "dialog");
    launcher.setAttribute("aria-expanded", "false");
    launcher.appendChild(el("span", "cdw-launcher-text", T.launcher));
    var badge = el("span", "cdw-badge");
    badge.hidden = true;
    launcher.appendChild(badge);

    var panel = el("section", "cdw-panel");
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", TITLE);

    var header = el("header", "cdw-header");
    var heading = el("div", "cdw-heading");
    heading.appendChild(el("h2", "cdw-title", TITLE));
    heading.appendChild(el("div", "cdw-subtitle", T.subtitle));
    var close = el("button", "cdw-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", T.close);
    header.appendChild(heading);
    header.appendChild(close);

    var status = el("div", "cdw-status");
    status.hidden = true;
    status.setAttribute("role", "status");

    var log = el("div", "cdw-log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");

    var typing = el("div", "cdw-typing");
    typing.hidden = true;
    typing.appendChild(el("span"));
    typing.appendChild(el("span"));
    typing.appendChild(el("span"));
    typing.appendChild(el("span", "cdw-sr", T.typing));

    var form = el("form", "cdw-form");
    var input = el("input", "cdw-input");
    input.type = "text";
    input.maxLength = 2000;
    input.autocomplete = "off";
    input.placeholder = T.placeholder;
    input.setAttribute("aria-label", T.placeholder);
    var send = el("button", "cdw-send", T.send);
    send.type = "submit";
    // Photos, videos and PDFs; on a phone a second button opens the camera directly.
    var fileInput = el("input", "cdw-fileinput");
    fileInput.type = "file";
    fileInput.accept = "image/*,video/*,application/pdf";
    fileInput.multiple = true;
    fileInput.tabIndex = -1;
    var cameraInput = el("input", "cdw-fileinput");
    cameraInput.type = "file";
    cameraInput.accept = "image/*";
    cameraInput.setAttribute("capture", "environment");
    cameraInput.tabIndex = -1;
    var attach = el("button", "cdw-tool cdw-attach");
    attach.appendChild(icon(ICON_PAPERCLIP));
    attach.type = "button";
    attach.title = T.attach;
    attach.setAttribute("aria-label", T.attach);
    var camera = el("button", "cdw-tool cdw-camera");
    camera.appendChild(icon(ICON_CAMERA));
    camera.type = "button";
    camera.title = T.camera;
    camera.setAttribute("aria-label", T.camera);
    camera.hidden = !isTouchDevice();
    form.appendChild(attach);
    form.appendChild(camera);
    form.appendChild(fileInput);
    form.appendChild(cameraInput);
    form.appendChild(input);
    form.appendChild(send);

    panel.appendChild(header);
    panel.appendChild(status);
    panel.appendChild(log);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);

    launcher.addEventListener("click", function () { state.isOpen ? closePanel() : openPanel(); });
    close.addEventListener("click", closePanel);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") closePanel();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      sendText(text);
    });

    attach.addEventListener("click", function () { fileInput.click(); });
    camera.addEventListener("click", function () { cameraInput.click(); });
    [fileInput, cameraInput].forEach(function (picker) {
      picker.addEventListener("change", function () {
        Array.prototype.forEach.call(picker.files || [], sendFile);
        picker.value = "";
      });
    });

    ui = { host: host, launcher: launcher, badge: badge, panel: panel, status: status, log: log,
           typing: typing, input: input };
    renderWelcomeIfEmpty();
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------------------------
  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function renderWelcomeIfEmpty() {
    if (ui.log.querySelector(".cdw-msg")) return;
    var row = el("div", "cdw-msg cdw-welcome");
    row.appendChild(el("div", "cdw-bubble", T.welcome));
    ui.log.appendChild(row);
  }

  function removeWelcome() {
    var welcome = ui.log.querySelector(".cdw-welcome");
    if (welcome) welcome.remove();
  }

  function authorClass(author) {
    return ["customer", "bot", "agent", "system"].indexOf(author) >= 0 ? author : "bot";
  }

  function disableButtons(scope) {
    Array.prototype.forEach.call(scope.querySelectorAll(".cdw-btn"), function (b) { b.disabled = true; });
  }

  function renderMessage(message, pending, answered) {
    if (!message || typeof message.id !== "string" || state.shown[message.id]) return;
    var attachments = Array.isArray(message.attachments) ? message.attachments : [];
    var uploadRow = message.author === "customer" ? rowOfUpload(attachments) : null;
    if (uploadRow) {
      // our own upload coming back as a message: it is already on screen
      state.shown[message.id] = uploadRow;
      uploadRow.setAttribute("data-id", message.id);
      return;
    }
    removeWelcome();
    var author = authorClass(message.author);
    var row = el("div", "cdw-msg cdw-" + author + (pending ? " cdw-pending" : ""));
    row.setAttribute("data-id", message.id);
    row.setAttribute("data-author", author);
    if (author === "agent") row.appendChild(el("div", "cdw-who", T.agent));
    if (message.text || !attachments.length) row.appendChild(el("div", "cdw-bubble", message.text || ""));
    if (attachments.length) row.appendChild(filesElement(attachments));
    if (Array.isArray(message.buttons) && message.buttons.length) {
      var bar = el("div", "cdw-buttons");
      message.buttons.forEach(function (button) {
        if (!button || typeof button.payload !== "string") return;
        var node = el("button", "cdw-btn", button.title || button.payload);
        node.type = "button";
        node.addEventListener("click", function () {
          sendPostback(String(button.title || ""), button.payload);
        });
        bar.appendChild(node);
      });
      row.appendChild(bar);
      if (answered) disableButtons(bar);
    }
    state.shown[message.id] = row;
    ui.log.insertBefore(row, ui.typing.parentNode === ui.log ? ui.typing : null);
    scrollToEnd();
  }

  function markDelivered(id) {
    var row = state.shown[id];
    if (row) row.classList.remove("cdw-pending");
  }

  function markFailed(id) {
    var row = state.shown[id];
    if (!row || row.classList.contains("cdw-failed")) return;
    row.classList.remove("cdw-pending");
    row.classList.add("cdw-failed");
    row.appendChild(el("div", "cdw-note", T.notSent));
  }

  function renderHistory(messages) {
    // The server's history is the truth: start over from it, then put back what is still in flight.
    state.shown = {};
    state.uploaded = {};
    while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    var stored = {};
    var list = Array.isArray(messages) ? messages : [];
    var lastCustomer = -1;
    list.forEach(function (message, index) {
      if (message.author === "customer") lastCustomer = index;
    });
    list.forEach(function (message, index) {
      stored[message.id] = true;
      // Buttons the customer has moved past (answered, or written after) are kept but inactive.
      renderMessage(message, false, index < lastCustomer);
    });
    state.pending = state.pending.filter(function (frame) { return !stored[frame.id]; });
    state.pending.forEach(function (frame) {
      renderMessage({ id: frame.id, author: "customer", text: frame.text || frame.title || "" }, true);
    });
    // files still on their way stay (unless the history already has them)
    state.uploads = state.uploads.filter(function (row) { return !stored[row.getAttribute("data-id")]; });
    state.uploads.forEach(function (row) {
      state.shown[row.getAttribute("data-id")] = row;
      ui.log.appendChild(row);
    });
    renderWelcomeIfEmpty();
  }

  function setTyping(on) {
    clearTimeout(state.typingTimer);
    if (on) {
      ui.log.appendChild(ui.typing);
      ui.typing.hidden = false;
      scrollToEnd();
      // If the "done" frame is lost (a dropped socket), do not leave the dots on forever.
      state.typingTimer = setTimeout(function () { setTyping(false); }, TYPING_MAX_MS);
    } else {
      ui.typing.hidden = true;
    }
  }

  function setStatus(text) {
    ui.status.textContent = text || "";
    ui.status.hidden = !text;
  }

  function setUnread(count) {
    state.unread = count;
    ui.badge.textContent = String(count);
    ui.badge.hidden = count === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Attachments: shown inline (images) or as links (everything else); sending one is an upload
  // ---------------------------------------------------------------------------------------------
  function isTouchDevice() {
    return !!(window.matchMedia && window.matchMedia("(pointer: coarse)").matches) || "ontouchstart" in window;
  }

  /** An http(s) address from the network, resolved against the CareDesk server; null otherwise. */
  function safeUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value, ORIGIN);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function attachmentKey(attachment) {
    if (attachment && attachment.id != null) return "id:" + attachment.id;
    var url = attachment && safeUrl(attachment.url);
    return url ? "url:" + url.split("?")[0] : null;
  }

  function rowOfUpload(attachments) {
    if (!attachments.length) return null;
    var row = null;
    for (var i = 0; i < attachments.length; i++) {
      var key = attachmentKey(attachments[i]);
      if (!key || !state.uploaded[key] || state.uploaded[key].parentNode !== ui.log) return null;
      row = state.uploaded[key];
    }
    return row;
  }

  function formatSize(bytes) {
    var size = Number(bytes);
    if (!(size > 0)) return "";
    if (size < 1024) return size + " B";
    if (size < 1024 * 1024) return Math.round(size / 1024) + " KB";
    return (size / 1024 / 1024).toFixed(1) + " MB";
  }

  function fileLink(attachment, url) {
    var name = attachment.name || T.file;
    var link = el("a", "cdw-file");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.setAttribute("download", name);
    var size = formatSize(attachment.size);
    link.appendChild(el("span", null, attachment.kind === "video" ? "🎬" : attachment.kind === "audio" ? "🎵" : "📄"));
    link.appendChild(el("span", null, name + (size ? " · " + size : "")));
    link.title = T.download + ": " + name;
    return link;
  }

  function attachmentNode(attachment) {
    if (!attachment || typeof attachment !== "object") return null;
    if (attachment.error) {
      return el("div", "cdw-file cdw-file-failed", fill(T.fileFailed, { reason: attachment.error }));
    }
    if (attachment.kind === "location") {
      var lat = Number(attachment.latitude), lon = Number(attachment.longitude);
      if (!isFinite(lat) || !isFinite(lon) || attachment.latitude == null) return null;
      var map = el("a", "cdw-file", "📍 " + fill(T.location, { place: lat.toFixed(5) + ", " + lon.toFixed(5) }));
      map.href = "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lon + "#map=17/" + lat + "/" + lon;
      map.target = "_blank";
      map.rel = "noopener noreferrer";
      return map;
    }
    if (attachment.kind === "contact") {
      return el("div", "cdw-file", "👤 " + [attachment.name, attachment.phone].filter(Boolean).join(" · "));
    }
    var url = safeUrl(attachment.url);
    if (!url) return null;
    if (attachment.kind === "image" || attachment.kind === "sticker") {
      var link = el("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      var img = el("img", "cdw-img");
      img.src = safeUrl(attachment.thumbnail_url) || url;
      img.alt = attachment.name || T.photo;
      img.loading = "lazy";
      img.addEventListener("load", scrollToEnd);
      link.appendChild(img);
      return link;
    }
    return fileLink(attachment, url);
  }

  function filesElement(attachments) {
    var box = el("div", "cdw-files");
    attachments.forEach(function (attachment) {
      var node = attachmentNode(attachment);
      if (node) box.appendChild(node);
    });
    return box;
  }

  function uploadReason(status, body) {
    var detail = body && body.detail;
    if (Array.isArray(detail)) detail = detail.map(function (item) { return item && item.msg; }).join("; ");
    if (typeof detail === "string" && detail) return detail;
    if (status === 413) return T.tooLarge;
    if (status === 415) return T.unsupported;
    return fill(T.serverError, { status: status });
  }

  /** Send one file: a row with its name and progress, replaced by what the server stored. */
  function sendFile(file) {
    if (!file) return;
    removeWelcome();
    var name = file.name || T.photo;
    // The message id is ours, as for typed messages: the server stores a resend once, and the
    // socket frame of the stored message (same id) finds this row instead of drawing another.
    var id = newId();
    var row = el("div", "cdw-msg cdw-customer cdw-pending cdw-upload");
    row.setAttribute("data-id", id);
    row.setAttribute("data-author", "customer");
    state.shown[id] = row;
    var bubble = el("div", "cdw-bubble", fill(T.uploading, { name: name }));
    var bar = el("div", "cdw-progress");
    var fillBar = el("span");
    bar.appendChild(fillBar);
    row.appendChild(bubble);
    row.appendChild(bar);
    ui.log.insertBefore(row, ui.typing.parentNode === ui.log ? ui.typing : null);
    state.uploads.push(row);
    scrollToEnd();

    function finish() {
      state.uploads = state.uploads.filter(function (r) { return r !== row; });
      row.classList.remove("cdw-pending");
      if (bar.parentNode) bar.parentNode.removeChild(bar);
    }
    function fail(reason) {
      finish();
      row.classList.add("cdw-failed");
      bubble.textContent = fill(T.uploadFailed, { name: name, reason: reason });
      scrollToEnd();
    }
    ensureSession().then(function (session) {
      var form = new FormData();
      form.append("file", file, name);
      form.append("id", id);
      var request = new XMLHttpRequest();
      request.open("POST", ORIGIN + "/webchat/attachments?token=" + encodeURIComponent(session.token));
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) fillBar.style.width = Math.round(100 * event.loaded / event.total) + "%";
      };
      request.onload = function () {
        var body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch (e) {
          body = null;
        }
        if (request.status < 200 || request.status >= 300) {
          fail(uploadReason(request.status, body));
          return;
        }
        finish();
        var stored = body && Array.isArray(body.attachments) ? body.attachments : [];
        row.removeChild(bubble);
        row.appendChild(filesElement(stored));
        stored.forEach(function (attachment) {
          var key = attachmentKey(attachment);
          if (key) state.uploaded[key] = row;
        });
        disableButtons(ui.log);
        scrollToEnd();
      };
      request.onerror = function () { fail(T.network); };
      request.send(form);
    }, function () {
      fail(state.stopped ? T.unavailable : T.network);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------------------------
  function ensureSession() {
    if (state.session && state.session.token) return Promise.resolve(state.session);
    return fetch(ORIGIN + "/webchat/session", { method: "POST", credentials: "omit" }).then(function (response) {
      if (response.status === 404) {
        state.stopped = true;
        throw new Error("web chat is off");
      }
      if (!response.ok) throw new Error("session request failed: " + response.status);
      return response.json();
    }).then(function (body) {
      state.session = { visitorId: body.visitor_id, token: body.token };
      saveSession(state.session);
      return state.session;
    });
  }

  function connect() {
    // One attempt at a time: two session requests would mint two visitors, and the socket could
    // end up on one while the browser remembers the other, losing the chat on the next reload.
    if (state.ws || state.connecting || state.stopped) return;
    state.connecting = true;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    setStatus(state.attempt ? T.offline : (state.isOpen ? T.connecting : ""));
    ensureSession().then(function (session) {
      state.connecting = false;
      openSocket(session);
    }, function () {
      state.connecting = false;
      if (state.stopped) setStatus(T.unavailable);
      else scheduleReconnect();
    });
  }

  function openSocket(session) {
    if (state.ws) return;
    var ws = new WebSocket(SOCKET_URL + "?token=" + encodeURIComponent(session.token));
    state.ws = ws;
    ws.onopen = function () {
      state.attempt = 0;
      setStatus("");
      // Resending is safe: the server stores each message id once and acknowledges repeats.
      state.pending.forEach(function (frame) { ws.send(JSON.stringify(frame)); });
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(function () {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, PING_MS);
    };
    ws.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame === "object") handleFrame(frame);
    };
    ws.onclose = function (event) {
      if (state.ws !== ws) return;
      state.ws = null;
      clearInterval(state.pingTimer);
      setTyping(false);
      if (event.code === 4401) {
        // The server no longer knows this token (e.g. its key changed): start as a new visitor.
        state.session = null;
        saveSession(null);
        scheduleReconnect(0);
      } else if (event.code === 4404) {
        state.stopped = true;
        setStatus(T.unavailable);
      } else {
        scheduleReconnect();
      }
    };
  }

  function scheduleReconnect(delay) {
    if (state.stopped || state.reconnectTimer) return;
    if (delay == null) {
      var ceiling = Math.min(BACKOFF_MAX_MS, 1000 * Math.pow(2, state.attempt));
      delay = ceiling / 2 + Math.random() * ceiling / 2; // jitter, so a restart is not a stampede
      state.attempt += 1;
    }
    setStatus(T.offline);
    state.reconnectTimer = setTimeout(function () {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (state.ws || state.stopped || !state.session) return;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    connect();
  }

  function handleFrame(frame) {
    switch (frame.type) {
      case "history":
        renderHistory(frame.messages);
        break;
      case "ack":
        state.pending = state.pending.filter(function (f) { return f.id !== frame.id; });
        markDelivered(frame.id);
        break;
      case "error":
        if (typeof frame.id === "string") {
          state.pending = state.pending.filter(function (f) { return f.id !== frame.id; });
          markFailed(frame.id);
        }
        break;
      case "typing":
        setTyping(!!frame.on);
        break;
      case "message":
        if (frame.author !== "customer") setTyping(false);
        var isNew = !state.shown[frame.id];
        renderMessage(frame, false);
        if (isNew && !state.isOpen && frame.author !== "customer") setUnread(state.unread + 1);
        break;
      default:
        break; // pong, and frame types newer than this script
    }
  }

  function sendFrame(frame) {
    disableButtons(ui.log); // whatever the customer says next answers the buttons shown so far
    state.pending.push(frame);
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
    else connect(); // queued; sent when the socket opens
  }

  function sendText(text) {
    var frame = { type: "message", id: newId(), text: text };
    renderMessage({ id: frame.id, author: "customer", text: text }, true);
    sendFrame(frame);
  }

  function sendPostback(title, payload) {
    var frame = { type: "postback", id: newId(), payload: payload, title: title };
    renderMessage({ id: frame.id, author: "customer", text: title }, true);
    sendFrame(frame);
  }

  // ---------------------------------------------------------------------------------------------
  // Panel
  // ---------------------------------------------------------------------------------------------
  function openPanel() {
    state.isOpen = true;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    connect();
    scrollToEnd();
    ui.input.focus();
  }

  function closePanel() {
    state.isOpen = false;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  function start() {
    buildUi();
    // A returning visitor connects at once, so an agent's reply shows as unread even before they
    // open the panel; a new visitor costs the server nothing until they open it.
    if (state.session) connect();
    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") reconnectNow();
    });
  }

  // For a shop's own "chat with us" links; does nothing until the page has loaded.
  window.CareDeskWebchat = {
    open: function () { if (ui.panel) openPanel(); },
    close: function () { if (ui.panel) closePanel(); },
  };

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
