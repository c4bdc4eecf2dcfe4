// The inbox's service worker (served at /inbox/sw.js, scope /inbox): the app shell offline, and Web Push.
//
// Shell: the inbox page and its static files are fetched from the network first (so an upgrade shows at
// once, as the no-cache headers intend) and kept in a cache for when the network is gone; then the last
// inbox page opens and says it is offline. Nothing else is touched: /inbox/api/*, /api/*, the live socket
// and the login page go straight to the network and are never stored, so no conversation data is cached.
//
// Push: a push from the server (a short JSON payload: title, body, conversation_id, url) is shown as a
// notification; clicking it focuses an open inbox on that conversation, or opens one.
const SHELL_CACHE = "caredesk-inbox-shell-v1";
const SHELL_PAGE = "/inbox";
const SHELL_FILES = [
  "/inbox/static/inbox.js",
  "/inbox/static/inbox.css",
  "/inbox/static/api.js",
  "/inbox/static/dom.js",
  "/inbox/static/live.js",
  "/inbox/static/i18n.js",
  "/inbox/static/attachments.js",
  "/inbox/static/notify.js",
  "/inbox/static/push.js",
  "/inbox/static/pwa.js",
  "/inbox/static/i18n/vi.json",
  "/inbox/static/i18n/en.json",
  "/inbox/static/favicon.svg",
  "/inbox/static/icons/icon-192.png",
  "/inbox/static/icons/icon-512.png",
  "/inbox/manifest.webmanifest",
];
const ICON = "/inbox/static/icons/icon-192.png";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One by one: a file that fails (renamed in an upgrade) must not stop the worker from installing.
    await Promise.all(SHELL_FILES.map((path) => cache.add(new Request(path, { cache: "no-cache" })).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("caredesk-inbox-shell-") && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** Is this a request of the shell: the inbox page (any of its addresses) or one of its static files? */
function shellKind(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (request.mode === "navigate" && (url.pathname === "/inbox" || url.pathname.startsWith("/inbox/conversations/"))) {
    return "page";
  }
  if (url.pathname.startsWith("/inbox/static/") || url.pathname === "/inbox/manifest.webmanifest") return "file";
  return null; // the API, the socket, the login page and everything else: never cached
}

function offlinePage() {
  const html = `<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>CareDesk</title></head>
<body><h1>Ngoại tuyến · Offline</h1>
<p>Không có kết nối mạng. Hãy mở lại hộp thư khi có mạng.</p>
<p>There is no network connection. Open the inbox again when you are back online.</p></body></html>`;
  return new Response(html, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

async function fromPage(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    const landed = new URL(response.url || request.url);
    if (response.ok && !response.redirected && landed.pathname === SHELL_PAGE) {
      // Only the plain inbox is kept (a conversation's page carries that conversation in its boot data);
      // offline, every inbox address opens it.
      await cache.put(SHELL_PAGE, response.clone());
    } else if (landed.pathname.startsWith("/inbox/login")) {
      await cache.delete(SHELL_PAGE); // logged out or expired: the shell names the agent, forget it
    }
    return response;
  } catch (_) {
    return (await cache.match(SHELL_PAGE)) || offlinePage();
  }
}

async function fromFile(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const kind = shellKind(event.request);
  if (kind === "page") event.respondWith(fromPage(event.request));
  else if (kind === "file") event.respondWith(fromFile(event.request));
});

self.addEventListener("message", (event) => {
  // The page logs out: the cached shell (which names the agent) goes.
  if (event.data && event.data.type === "forget-shell") {
    event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.delete(SHELL_PAGE)));
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const id = Number.isInteger(data.conversation_id) ? data.conversation_id : null;
  const url = typeof data.url === "string" && data.url.startsWith("/inbox") ? data.url : "/inbox";
  event.waitUntil((async () => {
    // An inbox on screen tells the agent itself, by its own rules (not the conversation they are
    // reading); the push is for when none is. Browsers require no notification while one is visible.
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    if (windows.some((client) => client.visibilityState === "visible" && isInbox(client.url))) return;
    await self.registration.showNotification(data.title || "CareDesk", {
      body: data.body || "",
      icon: ICON,
      // The same tag as the page's own notification: one conversation, one notification.
      tag: id === null ? "caredesk" : `caredesk-conversation-${id}`,
      data: { conversation_id: id, url },
    });
  })());
});

function isInbox(address) {
  const path = new URL(address).pathname;
  return (path === "/inbox" || path.startsWith("/inbox/")) && !path.startsWith("/inbox/login");
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = new URL(data.url || "/inbox", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const inbox = windows.find((client) => isInbox(client.url));
    if (inbox) {
      await inbox.focus();
      if (data.conversation_id !== null && data.conversation_id !== undefined) {
        inbox.postMessage({ type: "open-conversation", conversation_id: data.conversation_id });
      }
      return;
    }
    await self.clients.openWindow(url);
  })());
});
