// "Typing…" for the customer: while the agent types a reply, the inbox tells the server at most once
// every few seconds, and that it stopped after a pause or when the text is cleared; the server shows it
// on the customer's channel where the channel can (POST /api/conversations/{id}/typing). Best effort:
// a failed signal is dropped, never retried (a late "typing" is worse than none).
import { api } from "./api.js";

/** While typing, at most one signal this often (the server throttles at the same pace). */
const INTERVAL_MS = 4000;
/** No key for this long: the agent stopped typing. */
const IDLE_MS = 6000;

function post(conversationId, typing) {
  api(`/api/conversations/${conversationId}/typing`, { method: "POST", body: { typing } }).catch(() => {});
}

/**
 * Watch ``textarea``; ``replyingTo()`` is the id of the conversation the text is a reply to, or null
 * (a private note, no conversation open): notes never show as typing.
 * Returns ``{ sent() }``, to call once a reply went out (the server has hidden the indicator).
 */
export function watchTyping(textarea, replyingTo) {
  let shownIn = null; // the conversation where "typing" was last signalled
  let lastSent = 0;
  let idle = null;

  function stop() {
    clearTimeout(idle);
    idle = null;
    if (shownIn !== null) post(shownIn, false);
    shownIn = null;
    lastSent = 0;
  }

  textarea.addEventListener("input", () => {
    const id = replyingTo();
    if (shownIn !== null && shownIn !== id) stop();
    if (id === null || !textarea.value.trim()) {
      stop();
      return;
    }
    const now = Date.now();
    if (now - lastSent >= INTERVAL_MS) {
      lastSent = now;
      shownIn = id;
      post(id, true);
    }
    clearTimeout(idle);
    idle = setTimeout(stop, IDLE_MS);
  });

  return {
    sent() {
      clearTimeout(idle);
      idle = null;
      shownIn = null;
      lastSent = 0;
    },
    stop,
  };
}
