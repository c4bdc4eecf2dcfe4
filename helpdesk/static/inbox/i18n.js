// UI strings: every visible word of the inbox comes from i18n/<lang>.json, never from the code.
const STORAGE_KEY = "caredesk.inbox.lang";
// Mirrors the choice for the server, so the next page load is rendered in it from the first paint.
const COOKIE = "caredesk_inbox_lang";
export const LANGUAGES = ["vi", "en"];

let language = "vi";
let strings = {};
const listeners = [];

export function t(key, values = {}) {
  let text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  for (const [name, value] of Object.entries(values)) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

export function currentLanguage() {
  return language;
}

export function locale() {
  return language === "vi" ? "vi-VN" : "en-GB";
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** Fill every element marked with data-i18n (text), data-i18n-placeholder, -title or -aria-label. */
export function applyStrings(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  document.documentElement.lang = language;
  for (const button of root.querySelectorAll(".lang-switch [data-lang]")) {
    button.classList.toggle("active", button.dataset.lang === language);
    button.setAttribute("aria-pressed", String(button.dataset.lang === language));
  }
}

async function load(lang) {
  const response = await fetch(`/inbox/static/i18n/${lang}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`strings for ${lang}: HTTP ${response.status}`);
  return response.json();
}

function remember(lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch (_) {
    // private mode: the cookie still carries the choice
  }
  document.cookie = `${COOKIE}=${lang}; path=/inbox; max-age=31536000; samesite=lax`;
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  strings = await load(lang);
  language = lang;
  remember(lang);
  applyStrings();
  for (const listener of listeners) listener(lang);
}

/** Start with the strings the server embedded; switch if the agent chose another language earlier. */
export async function initStrings(boot) {
  language = boot.lang || "vi";
  strings = boot.strings || (await load(language));
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch (_) {
    stored = null;
  }
  if (stored && LANGUAGES.includes(stored) && stored !== language) {
    await setLanguage(stored);
  } else {
    applyStrings();
  }
  for (const button of document.querySelectorAll(".lang-switch [data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
}
