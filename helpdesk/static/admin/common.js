// What every admin page shares: the strings (Vietnamese first, English), the navigation's language
// switch and logout, a status line for outcomes, and small builders for labelled form fields.
import { api, ApiError, describeError } from "/inbox/static/api.js";
import { fill, h } from "/inbox/static/dom.js";
import "/admin/static/nav.js";

export { api, ApiError, fill, h };

export const boot = JSON.parse(document.getElementById("admin-boot").textContent);
const LANGUAGES = ["vi", "en"];
const STORAGE_KEY = "caredesk.inbox.lang"; // shared with the inbox and the reports: one choice for all
const LANGUAGE_COOKIE = "caredesk_inbox_lang";
const listeners = [];

let language = LANGUAGES.includes(boot.lang) ? boot.lang : "vi";

/** A UI string in the current language, with {name} values filled in. */
export function t(key, values = {}) {
  const strings = boot.strings[language] || {};
  let text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  for (const [name, value] of Object.entries(values)) text = text.split("{" + name + "}").join(String(value));
  return text;
}

export function locale() {
  return language === "vi" ? "vi-VN" : "en-GB";
}

/** Run ``listener`` after every language switch (pages re-render what they built). */
export function onLanguageChange(listener) {
  listeners.push(listener);
}

export function applyStrings(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.documentElement.lang = language;
  document.title = `${t(`admin.title.${boot.section}`)} · CareDesk`;
  for (const button of root.querySelectorAll(".lang-switch [data-lang]")) {
    button.classList.toggle("active", button.dataset.lang === language);
    button.setAttribute("aria-pressed", String(button.dataset.lang === language));
  }
}

function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  language = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch (_) {
    // private mode: the cookies still carry the choice
  }
  for (const path of ["/inbox", "/reports", "/admin"]) {
    document.cookie = `${LANGUAGE_COOKIE}=${lang}; path=${path}; max-age=31536000; samesite=lax`;
  }
  applyStrings();
  for (const listener of listeners) listener(lang);
}

/** Tell the admin what happened (success or the reason of a refusal), in the status line. Pages say
 * a success after re-rendering, so the message comes with the state it describes. */
export function flash(text, kind = "success") {
  const line = document.getElementById("admin-flash");
  line.textContent = text;
  line.className = `admin-flash admin-flash-${kind}`;
  line.hidden = false;
}

/** The reason of a failed call, in the page's language when it is one the page knows. */
export function reason(error, known = {}) {
  if (error instanceof ApiError) {
    const detail = describeError(error); // validation errors arrive as a list: their messages joined
    for (const [needle, key] of Object.entries(known)) if (detail.includes(needle)) return t(key);
    if (error.status === 403) return t("admin.error.forbidden");
  }
  return t("admin.error.generic", { reason: describeError(error) });
}

export function failed(error, known = {}) {
  flash(reason(error, known), "error");
}

let fieldCount = 0;

/** A labelled form field: the label's text from ``labelKey``, the control given (an id is made). */
export function field(labelKey, control, hintKey = null) {
  fieldCount += 1;
  if (!control.id) control.id = `admin-field-${fieldCount}`;
  const label = h("label", { for: control.id, "data-i18n": labelKey }, t(labelKey));
  const hint = hintKey ? h("span", { class: "muted small", "data-i18n": hintKey }, t(hintKey)) : null;
  return h("div", { class: "admin-field" }, label, control, hint);
}

/** A button whose text comes from ``key``. */
export function button(key, attrs = {}) {
  return h("button", { type: "button", class: "btn", ...attrs, "data-i18n": key }, t(key));
}

export function formatTime(iso) {
  if (!iso) return t("admin.never");
  return new Date(iso).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" });
}

function initNav() {
  for (const button of document.querySelectorAll(".lang-switch [data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch (_) {
    stored = null;
  }
  if (stored && stored !== language && LANGUAGES.includes(stored)) setLanguage(stored);
  else applyStrings();
}

initNav();
