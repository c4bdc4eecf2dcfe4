// Web Push for this browser: while the agent has notifications on, the browser's push subscription is
// kept on the server (POST /api/push/subscriptions), so a new conversation or a customer's message
// reaches them with the inbox closed (the service worker shows it). Turning notifications off drops it.
import { api } from "./api.js";

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function sameKey(subscription, publicKey) {
  const key = subscription.options && subscription.options.applicationServerKey;
  if (!key) return false;
  const wanted = keyBytes(publicKey);
  const given = new Uint8Array(key);
  return given.length === wanted.length && given.every((byte, index) => byte === wanted[index]);
}

/**
 * Make the server's record match the agent's choice: subscribed (``on``) or not. Resolves to "on",
 * "off" or "unsupported"; rejects when the browser's push service cannot be reached (then the
 * notifications still show while the inbox is open).
 */
export async function syncPush(on) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return "unsupported";
  const registration = await navigator.serviceWorker.ready;
  let subscription = await registration.pushManager.getSubscription();
  if (!on) {
    if (subscription) {
      await api("/api/push/subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } })
        .catch(() => null); // already gone on the server
      await subscription.unsubscribe();
    }
    return "off";
  }
  const { public_key: publicKey } = await api("/api/push/vapid-public-key");
  if (subscription && !sameKey(subscription, publicKey)) {
    // Made for another server key (a reinstalled server): push services would refuse its pushes.
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
  }
  await api("/api/push/subscriptions", { method: "POST", body: subscription.toJSON() });
  return "on";
}
