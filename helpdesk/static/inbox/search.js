// The inbox's search box: customers and conversations as the agent types, grouped, opened with a click
// or the keyboard (a combobox: arrows move, Enter opens, Escape closes). Results come from
// GET /api/search; every piece of text, the highlighted snippets included, goes in as text nodes.
import { api } from "./api.js";
import { $, fill, h } from "./dom.js";
import { onLanguageChange, t } from "./i18n.js";

const DEBOUNCE_MS = 250;
const MAX_LENGTH = 200;

/** Wire the search box; ``open(conversationId)`` shows a conversation in the inbox. */
export function initSearch({ open }) {
  const input = $("#search-input");
  const results = $("#search-results");
  if (!input || !results) return;
  const status = $("#search-status");
  let timer = 0;
  let asked = 0; // the latest request: answers to older ones are dropped
  let options = [];
  let active = -1;
  let last = null; // { query, body } shown now, redrawn when the language changes

  function setOpen(visible) {
    results.hidden = !visible;
    input.setAttribute("aria-expanded", String(visible));
    if (!visible) setActive(-1);
  }

  function setActive(index) {
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(option) {
    if (option.dataset.kind === "profile") {
      // the customer's own page: their timeline across every channel
      setOpen(false);
      location.assign(`/inbox/customers/${Number(option.dataset.customerId)}`);
      return;
    }
    const id = Number(option.dataset.conversationId);
    if (!id) return;
    setOpen(false);
    open(id);
  }

  function snippet(parts) {
    return h("span", { class: "search-snippet" },
      (parts || []).map((part) => (part.match ? h("mark", {}, part.text) : part.text)));
  }

  function option(key, hit, title, meta, parts) {
    const id = `search-option-${options.length}`;
    const conversationId = key === "profile" ? "" : hit.conversation_id || "";
    const customerId = key === "profile" ? hit.id : "";
    const node = h("div", {
      id, role: "option", class: "search-option", "aria-selected": "false",
      "aria-disabled": conversationId || customerId ? null : "true", dataset: { conversationId, customerId, kind: key },
      onmousedown: (event) => event.preventDefault(), // keep the focus in the box
      onclick: () => choose(node),
    },
    h("span", { class: "search-option-top" }, h("strong", { class: "search-option-name" }, title),
      h("span", { class: "search-option-meta muted small" }, meta)),
    snippet(parts));
    options.push(node);
    return node;
  }

  function channelName(channel) {
    const name = t(`channel.${channel}`);
    return name === `channel.${channel}` ? channel : name;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleDateString(document.documentElement.lang === "vi" ? "vi-VN" : "en-GB") : "";
  }

  function group(key, label, nodes) {
    const heading = `search-group-${key}`;
    return h("div", { role: "group", class: "search-group", "aria-labelledby": heading },
      h("div", { id: heading, class: "search-group-title" }, label), nodes);
  }

  function render(body) {
    options = [];
    active = -1;
    const customers = body.customers.map((hit) => option("customer", hit, hit.name,
      [hit.channels.map(channelName).join(", "), hit.phone].filter(Boolean).join(" · "),
      hit.matched === "name" ? [] : hit.snippet_parts));
    const conversations = body.conversations.map((hit) => option("conversation", hit, hit.customer_name,
      [channelName(hit.channel), t(`state.${hit.status}`), when(hit.last_activity_at)].filter(Boolean).join(" · "),
      hit.snippet_parts));
    const profiles = body.customers.map((hit) => option("profile", hit, hit.name, t("customer_timeline.open_link"), []));
    const groups = [];
    if (customers.length) groups.push(group("customers", t("search.customers"), customers));
    if (conversations.length) groups.push(group("conversations", t("search.conversations"), conversations));
    if (profiles.length) groups.push(group("profiles", t("customer_timeline.search_group"), profiles));
    // a listbox may hold only options and groups: "nothing found" is a disabled option, outside the
    // keyboard's list of options
    if (!groups.length) groups.push(h("div", { role: "option", "aria-disabled": "true", "aria-selected": "false",
      class: "search-empty muted" }, t("search.none")));
    fill(results, groups);
    const count = customers.length + conversations.length; // the history links repeat the customers
    if (status) status.textContent = count ? t("search.count", { count }) : t("search.none");
    setOpen(true);
  }

  async function run(query) {
    const mine = ++asked;
    try {
      const body = await api(`/api/search?q=${encodeURIComponent(query)}&limit=10`);
      if (mine !== asked) return;
      last = { query, body };
      render(body);
    } catch (_) {
      if (mine !== asked) return;
      last = null;
      fill(results, h("div", { role: "option", "aria-disabled": "true", "aria-selected": "false",
        class: "search-empty search-error" }, t("search.failed")));
      setOpen(true);
    }
  }

  input.maxLength = MAX_LENGTH;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (!/[\p{L}\p{N}]/u.test(query)) {
      asked++;
      last = null;
      setOpen(false);
      return;
    }
    timer = setTimeout(() => run(query), DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (results.hidden && last) setOpen(true);
      if (!options.length) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((active + step + options.length) % options.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      const target = options[active] || options.find((node) => node.dataset.conversationId);
      if (target && !results.hidden) choose(target);
    } else if (event.key === "Escape") {
      if (!results.hidden) {
        event.stopPropagation(); // the inbox's own Escape (leave the box) waits for a second press
        setOpen(false);
      } else if (input.value) {
        event.stopPropagation();
        input.value = "";
        last = null;
      }
    }
  });
  input.addEventListener("focus", () => {
    if (last && input.value.trim() === last.query) setOpen(true);
  });
  input.addEventListener("blur", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    // Ctrl+K (⌘K): to the search box from anywhere
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });
  onLanguageChange(() => {
    if (last) render(last.body);
  });
}
