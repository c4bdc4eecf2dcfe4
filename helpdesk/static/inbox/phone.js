// The inbox on a phone or a tablet: one view at a time (list → conversation → customer details), with a back action.
// Which of the list and the conversation shows follows inbox.js alone (phone.css reads whether #conv is
// shown); this module adds the details view and the back button, and keeps both in the browser's
// history so the phone's own back gesture does the same as the button.
import { $ } from "./dom.js";

const app = $(".app");
const back = $("#phone-back");
const detailsButton = $("#phone-details-button");
const list = $("#conv-list");

/** Show or hide the customer details view (up to 1180 px; on wider screens they sit beside the thread). */
function showDetails(open) {
  app.classList.toggle("phone-details", open);
  detailsButton.setAttribute("aria-expanded", String(open));
}

/** Back to the list the way inbox.js itself would on the browser's back button: a popstate. */
function toList() {
  const view = new URLSearchParams(location.search).get("view") || "unassigned";
  history.pushState({}, "", `/inbox?view=${encodeURIComponent(view)}`);
  window.dispatchEvent(new PopStateEvent("popstate", { state: history.state }));
}

// A conversation opened from the list remembers it, so the back button can step back in history
// (inbox.js pushed the conversation's entry in its own click handler, which ran first).
list.addEventListener("click", (event) => {
  const link = event.target.closest(".row-link");
  if (!link || !event.defaultPrevented) return;
  history.replaceState({ ...(history.state || {}), phoneFromList: true }, "");
});

/** Close the details view: back in history when opening it made an entry. */
function closeDetails() {
  if (history.state && history.state.phoneDetails) history.back();
  else showDetails(false);
}

// The Customer button toggles (on a tablet the list stays beside the conversation, with no Back button).
detailsButton.addEventListener("click", () => {
  if (app.classList.contains("phone-details")) {
    closeDetails();
    return;
  }
  history.pushState({ ...(history.state || {}), phoneDetails: true }, "");
  showDetails(true);
});

back.addEventListener("click", () => {
  if (app.classList.contains("phone-details")) closeDetails();
  else if (history.state && history.state.phoneFromList) history.back();
  else toList();
});

window.addEventListener("popstate", (event) => {
  showDetails(Boolean(event.state && event.state.phoneDetails));
});
