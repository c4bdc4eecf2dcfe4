// The inbox as an installable app: registers the service worker (the offline shell, Web Push) and shows
// a clear "offline" banner while the network is gone, so a page opened from the cache says what it is.
import { h } from "./dom.js";
import { onLanguageChange, t } from "./i18n.js";

export const WORKER_URL = "/inbox/sw.js";
// "/inbox" rather than "/inbox/": the app's start page is /inbox itself, which "/inbox/" would not cover
// (the worker's response carries Service-Worker-Allowed: /inbox to allow it).
export const WORKER_SCOPE = "/inbox";

/** Register the service worker; resolves to its registration, or null where the browser has none. */
export async function registerWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return await navigator.serviceWorker.register(WORKER_URL, { scope: WORKER_SCOPE, type: "classic" });
  } catch (_) {
    return null; // plain http on a non-local address, or a private window: the inbox works without it
  }
}

function offlineBanner() {
  const banner = h("div", { class: "offline-banner", id: "offline-banner", role: "status", hidden: true });
  const paint = () => {
    banner.textContent = t("pwa.offline");
  };
  paint();
  onLanguageChange(paint);
  document.body.prepend(banner);
  const update = () => {
    banner.hidden = navigator.onLine;
    document.body.classList.toggle("is-offline", !navigator.onLine);
  };
  window.addEventListener("online", update);
  window.addEventListener("offline", update);
  update();
}

/** Forget the cached inbox page when the agent logs out (it carries their name). */
function forgetShellOnLogout() {
  const button = document.getElementById("logout-button");
  if (!button || !("serviceWorker" in navigator)) return;
  button.addEventListener("click", () => {
    const worker = navigator.serviceWorker.controller;
    if (worker) worker.postMessage({ type: "forget-shell" });
  });
}

/** Start the installable-app parts (after the UI strings are loaded: the banner is in the agent's language). */
export function startApp() {
  offlineBanner();
  forgetShellOnLogout();
  return registerWorker();
}
