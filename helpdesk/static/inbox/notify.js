// Telling the agent something needs them while they look elsewhere: a browser notification, an optional
// sound, and the number of unread conversations in the tab title ("(3) Hộp thư · CareDesk").
//
// Only two things notify: a conversation arriving in the agent's queues (waiting, unassigned, in a team
// they see, or handed straight to them) and a customer's message in a conversation assigned to them.
// Never their own messages, never the conversation they are looking at while the tab is visible.
// The browser's permission is asked only when the agent clicks "enable notifications", never on load.
import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { syncPush } from "./push.js";
import { t, onLanguageChange } from "./i18n.js";

const PREF_KEY = "caredesk.inbox.notify"; // "off" when the agent turned notifications off
const SOUND_KEY = "caredesk.inbox.notify_sound"; // "on" when the agent wants a sound (off by default)
const TITLE_PREFIX = /^\(\d+\) /;
// Frames of one conversation arriving together (a message, then its escalation) make one notification.
const GATHER_MS = 200;

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch (_) {
    return null; // private mode: defaults apply
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (_) {
    // private mode: the choice lasts for this page only
  }
}

// Line icons as SVG paths (no emoji: system fonts without an emoji font show empty boxes).
const ICONS = {
  bell: ["M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9", "M10.3 21a1.94 1.94 0 0 0 3.4 0"],
  bellOff: ["M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9", "M10.3 21a1.94 1.94 0 0 0 3.4 0", "M3 3l18 18"],
  soundOn: ["M11 5 6 9H2v6h4l5 4V5z", "M15.5 8.5a5 5 0 0 1 0 7", "M19 5a10 10 0 0 1 0 14"],
  soundOff: ["M11 5 6 9H2v6h4l5 4V5z", "M22 9l-6 6", "M16 9l6 6"],
};
const SVG = "http://www.w3.org/2000/svg";

function icon(paths) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  for (const d of paths) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return h("span", { class: "notify-icon", "aria-hidden": "true" }, svg);
}

function supported() {
  return typeof window.Notification === "function";
}

/** A short two-tone chime made with WebAudio: no sound file to fetch or cache. */
function chime() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  const context = new Context();
  const start = context.currentTime;
  [880, 1320].forEach((frequency, index) => {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.frequency.value = frequency;
    const at = start + index * 0.14;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.22);
  });
  setTimeout(() => context.close().catch(() => {}), 800);
}

/**
 * Start notifications for the agent ``me``.
 * ``currentId()`` is the conversation on screen; ``open(id)`` shows a conversation; ``controls`` is the
 * element the enable and sound toggles go into.
 * Returns ``onFrame(frame)`` for the live socket's frames and ``seen(id)`` for a conversation opened.
 */
export function startNotifications({ me, currentId, open, controls }) {
  const unread = new Set();
  const gathering = new Map(); // conversation id -> { escalated, message, timer }
  const announced = new Set(); // conversations announced as new (once per arrival in the queues)

  function enabled() {
    return supported() && Notification.permission === "granted" && stored(PREF_KEY) !== "off";
  }

  function soundOn() {
    return stored(SOUND_KEY) === "on";
  }

  // ------------------------------------------------------------ the tab title

  function applyTitle() {
    const base = document.title.replace(TITLE_PREFIX, "");
    const wanted = unread.size ? `(${unread.size}) ${base}` : base;
    if (document.title !== wanted) document.title = wanted;
  }

  // The inbox rewrites the title as the agent moves around: put the count back each time.
  const titleEl = document.querySelector("title");
  if (titleEl) new MutationObserver(applyTitle).observe(titleEl, { childList: true, characterData: true, subtree: true });

  function seen(id) {
    if (unread.delete(id)) applyTitle();
  }

  function looking(id) {
    return document.visibilityState === "visible" && currentId() === id;
  }

  document.addEventListener("visibilitychange", () => {
    const id = currentId();
    if (id !== null && id !== undefined && document.visibilityState === "visible") seen(id);
  });

  // ------------------------------------------------------------ showing one

  function show(id, kind, row) {
    if (looking(id)) return;
    unread.add(id);
    applyTitle();
    if (soundOn()) {
      try {
        chime();
      } catch (_) {
        // a browser without audio output: the notification still shows
      }
    }
    if (!enabled()) return;
    const name = row.customer_name || `#${id}`;
    const title = t(`notify.${kind}_title`, { name });
    const options = {
      body: kind === "message" && row.preview ? row.preview.text : t(`notify.${kind}_body`, { name }),
      tag: `caredesk-conversation-${id}`,
      icon: "/inbox/static/icons/icon-192.png",
      data: { conversation_id: id, url: `/inbox/conversations/${id}` },
    };
    try {
      const notification = new Notification(title, options);
      notification.onclick = () => {
        window.focus();
        notification.close();
        open(id);
      };
    } catch (_) {
      // Android's Chrome allows notifications only through the service worker.
      if (navigator.serviceWorker) {
        navigator.serviceWorker.ready.then((registration) => registration.showNotification(title, options))
          .catch(() => {});
      }
    }
  }

  async function decide(id) {
    const gathered = gathering.get(id);
    gathering.delete(id);
    let data;
    try {
      data = await api(`/inbox/api/rows?ids=${id}`);
    } catch (_) {
      return; // offline or gone: the list shows the state when it comes back
    }
    const row = data.data[0];
    if (!row) return;
    // Waiting in a queue the agent sees, or handed straight to them by the round robin.
    const inQueue = (row.state === "waiting_for_agent" && row.views.includes("unassigned"))
      || (["waiting_for_agent", "with_agent"].includes(row.state) && row.assignee_id === me.id);
    const arrival = `${id}:${row.escalated_at || row.created_at}`;
    if ((gathered.escalated || gathered.newConversation) && inQueue && !announced.has(arrival)) {
      announced.add(arrival);
      show(id, "new_conversation", row);
    } else if (gathered.message && row.assignee_id === me.id) {
      show(id, "message", row);
    }
  }

  function gather(id, what) {
    let entry = gathering.get(id);
    if (!entry) {
      entry = { escalated: false, message: false, newConversation: false };
      gathering.set(id, entry);
      setTimeout(() => decide(id), GATHER_MS);
    }
    Object.assign(entry, what);
  }

  function onFrame(frame) {
    if (frame.type === "gone") {
      seen(frame.conversation_id); // out of the agent's sight now: nothing left for them to open
      return;
    }
    if (frame.type !== "event" || frame.conversation_id === undefined || frame.conversation_id === null) return;
    const id = frame.conversation_id;
    if (frame.event === "message_created") {
      if (frame.author !== "customer" || frame.private) return;
      gather(id, frame.new_conversation ? { message: true, newConversation: true } : { message: true });
    } else if (frame.event === "conversation_escalated") {
      gather(id, { escalated: true });
    }
  }

  // ------------------------------------------------------------ the controls

  const enableButton = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "notify-enable" });
  const soundButton = h("button", { type: "button", class: "btn btn-ghost btn-small", id: "notify-sound" });

  function paint() {
    const permission = supported() ? Notification.permission : "unsupported";
    enableButton.hidden = permission === "unsupported";
    let key = "notify.enable";
    if (permission === "denied") key = "notify.blocked";
    else if (enabled()) key = "notify.disable";
    // An icon and a label; where the sidebar is narrow only the icon shows (the label stays for readers).
    fill(enableButton, icon(enabled() ? ICONS.bell : ICONS.bellOff), h("span", { class: "notify-label" }, t(key)));
    enableButton.title = t(`${key}_hint`);
    enableButton.disabled = permission === "denied";
    enableButton.setAttribute("aria-pressed", String(enabled()));
    fill(soundButton, icon(soundOn() ? ICONS.soundOn : ICONS.soundOff),
      h("span", { class: "notify-label" }, t(soundOn() ? "notify.sound_on" : "notify.sound_off")));
    soundButton.title = t("notify.sound_hint");
    soundButton.setAttribute("aria-pressed", String(soundOn()));
  }

  enableButton.addEventListener("click", async () => {
    if (!supported()) return;
    if (enabled()) {
      store(PREF_KEY, "off");
    } else {
      store(PREF_KEY, "on");
      if (Notification.permission === "default") await Notification.requestPermission();
    }
    paint();
    keepPush();
  });

  soundButton.addEventListener("click", () => {
    const on = !soundOn();
    store(SOUND_KEY, on ? "on" : "off");
    if (on) chime(); // a sample, and a user gesture that lets the page play sound later
    paint();
  });

  // A Web Push notification clicked while this page is open: the service worker asks it to show that one.
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      const data = event.data || {};
      if (data.type === "open-conversation" && Number.isInteger(data.conversation_id)) open(data.conversation_id);
    });
  }

  // Web Push (the inbox closed) follows the same choice; a browser whose push service is out of reach
  // (a headless one, a blocked network) still has the notifications while the inbox is open.
  function keepPush() {
    syncPush(enabled()).catch(() => {});
  }

  if (controls) controls.replaceChildren(enableButton, soundButton);
  paint();
  if (enabled()) keepPush();
  onLanguageChange(paint);

  return { onFrame, seen, enabled, unreadCount: () => unread.size };
}
