// The bot training page: review what the bot missed, label it, retrain, compare, activate, roll back.
// Everything comes from /api/nlu/*; customer text only ever enters the page as text nodes.
import { $, fill, h } from "/inbox/static/dom.js";
import { annotator, entitySection, ENTITY_STRINGS } from "./entities.js";

(() => {
  // ---------------------------------------------------------------- strings (vi first, en too)

  const STRINGS = {
    vi: {
      title: "Huấn luyện bot", tab_review: "Cần xem lại", tab_data: "Dữ liệu huấn luyện",
      tab_models: "Các phiên bản mô hình", tab_changes: "Lịch sử thay đổi", logout: "Đăng xuất",
      tab_parked: "Tin nhắn xử lý lỗi", parked_text: "Tin nhắn", parked_error: "Lỗi", parked_retry: "Xử lý lại",
      parked_none: "Không có tin nhắn nào bị treo.", parked_queued: "Đã đưa tin nhắn vào xử lý lại.",
      parked_help: "Tin nhắn bot xử lý thất bại nhiều lần. Khách đã được chuyển cho nhân viên; sửa nguyên nhân rồi bấm \"Xử lý lại\".",
      login_title: "Đăng nhập quản trị", email: "Email", password: "Mật khẩu", login: "Đăng nhập",
      login_failed: "Đăng nhập không thành công: {reason}", admins_only: "Chỉ quản trị viên được huấn luyện bot.",
      channel: "Kênh", all: "Tất cả", period: "Thời gian", all_time: "Mọi lúc", last_day: "24 giờ qua",
      last_week: "7 ngày qua", last_month: "30 ngày qua", reason: "Lý do", refresh: "Làm mới",
      reason_low_confidence: "Bot không chắc", reason_fallback: "Bot không hiểu",
      reason_handoff: "Chuyển nhân viên", reason_flagged: "Nhân viên báo hiểu sai",
      review_count: "{count} nhóm tin nhắn cần xem lại", review_empty: "Không còn tin nhắn nào cần xem lại.",
      messages_count: "{count} tin", guessed: "Bot đoán: {intent} ({percent}%)", guessed_none: "Bot không đoán được",
      label_placeholder: "ý định đúng", label: "Gán nhãn", dismiss: "Bỏ qua", mark: "Đánh dấu thực thể",
      mark_help: "Bôi đen một đoạn trong câu rồi bấm “Đánh dấu thực thể”.", entity_placeholder: "tên thực thể",
      mark_ok: "Thêm", labelled: "Đã gán {count} tin nhắn vào “{intent}” ({added} câu mẫu mới).",
      dismissed: "Đã bỏ qua {count} tin nhắn.", choose_intent: "Hãy nhập ý định.",
      retrain: "Huấn luyện lại", start_training: "Huấn luyện",
      retrain_help: "Huấn luyện một mô hình mới từ dữ liệu hiện tại rồi so sánh với mô hình đang chạy.",
      training: "Đang huấn luyện…", job_failed: "Huấn luyện thất bại: {error}",
      stage_preparing: "Chuẩn bị dữ liệu", stage_training: "Đang huấn luyện mô hình mới",
      stage_testing: "Đang kiểm tra mô hình mới", stage_comparing: "Đang so sánh với mô hình đang chạy",
      stage_done: "Xong", active_model: "Mô hình đang chạy: {version}", no_active_model: "Chưa có mô hình nào chạy",
      comparison: "So sánh mô hình mới với mô hình đang chạy", verdict_better: "Tốt hơn", verdict_worse: "Kém hơn",
      verdict_same: "Tương đương",
      verdict_change: "{change} điểm {metric} trên {set}", set_holdout: "tập kiểm tra giữ riêng", set_review: "tập đã gán nhãn",
      metric_accuracy: "độ chính xác", metric_macro_f1: "macro F1", verdict_new: "Mô hình đầu tiên", holdout_set: "Tập kiểm tra giữ riêng ({n} câu)",
      review_set: "Tin nhắn đã gán nhãn ({n} câu)", metric: "Chỉ số", active: "Đang chạy", candidate: "Mô hình mới",
      change: "Thay đổi", accuracy: "Độ chính xác", per_intent: "Thay đổi theo ý định", no_intent_change: "Không ý định nào thay đổi.",
      better_flips: "Đoán đúng hơn ({count})", worse_flips: "Đoán sai đi ({count})", none: "Không có.",
      flip: "{active} → {candidate}", not_comparable: "Mô hình đang chạy đã học các câu kiểm tra này, nên điểm của nó ở đây cao hơn thực tế.",
      activate: "Kích hoạt", activate_candidate: "Kích hoạt mô hình mới", discard: "Bỏ mô hình này",
      activated: "Đã kích hoạt mô hình {version}.", discarded: "Đã bỏ mô hình {version}.",
      confirm_worse: "Mô hình mới kém hơn mô hình đang chạy. Vẫn kích hoạt?",
      intents: "Ý định", new_intent: "ý định mới", add: "Thêm", import_export: "Nhập / xuất (Rasa YAML)",
      export: "Tải về tệp nlu.yml", merge: "Gộp thêm", replace: "Thay toàn bộ", import: "Nhập",
      imported: "Đã nhập: {added} thêm, {updated} sửa, {removed} xoá, {unchanged} giữ nguyên.",
      search: "Tìm câu mẫu…", all_intents: "Mọi ý định", search_button: "Tìm", new_example: "Câu mẫu mới",
      intent: "Ý định", add_example: "Thêm câu mẫu", text: "Câu", entities: "Thực thể",
      examples_count: "{count} câu mẫu", holdout: "giữ để kiểm tra", edit: "Sửa", save: "Lưu", cancel: "Huỷ",
      delete: "Xoá", confirm_delete: "Xoá câu mẫu này?", move_to: "Chuyển sang…", saved: "Đã lưu.",
      example_added: "Đã thêm câu mẫu.", example_deleted: "Đã xoá câu mẫu.", intent_added: "Đã thêm ý định {name}.",
      faq: "Câu trả lời FAQ của “{intent}”", faq_none: "Ý định này chưa có câu trả lời FAQ.",
      faq_vi: "Tiếng Việt", faq_en: "Tiếng Anh", faq_keywords: "Từ khoá (cách nhau bởi dấu phẩy)",
      faq_hide: "Ẩn", faq_revert: "Về bản gốc", faq_new: "Thêm câu trả lời", faq_id: "mã câu trả lời",
      faq_hidden: "(đang ẩn)", faq_origin_file: "từ tệp dữ liệu", faq_origin_edited: "đã sửa", faq_origin_added: "thêm mới",
      models: "Các phiên bản mô hình", version: "Phiên bản", created: "Tạo lúc", verdict: "Kết luận",
      models_help: "Bật một phiên bản để bot trả lời bằng nó ngay; bật lại phiên bản cũ để quay lui.",
      is_active: "đang chạy", rollback: "Quay lui về bản này", when: "Lúc", who: "Ai", what: "Thay đổi", details: "Chi tiết",
      actor_system: "hệ thống", actor_cli: "dòng lệnh", error: "Lỗi: {reason}",
      nav_menu: "Trình đơn", nav_label: "Điều hướng", nav_inbox: "Hộp thư", nav_reports: "Báo cáo", nav_canned: "Trả lời mẫu",
      nav_agents: "Nhân viên", nav_teams: "Nhóm", nav_sla: "SLA & giờ làm việc", nav_channels: "Kênh",
      nav_training: "Huấn luyện bot",
    },
    en: {
      title: "Bot training", tab_review: "Needs review", tab_data: "Training data", tab_models: "Model versions",
      tab_changes: "Change history", logout: "Log out", login_title: "Admin login", email: "Email",
      tab_parked: "Failed messages", parked_text: "Message", parked_error: "Error", parked_retry: "Process again",
      parked_none: "No message is parked.", parked_queued: "The message is being processed again.",
      parked_help: "Messages the bot failed to process several times. The customer was handed to an agent; fix the cause, then press \"Process again\".",
      password: "Password", login: "Log in", login_failed: "Login failed: {reason}",
      admins_only: "Only admins may train the bot.", channel: "Channel", all: "All", period: "Period",
      all_time: "All time", last_day: "Last 24 hours", last_week: "Last 7 days", last_month: "Last 30 days",
      reason: "Reason", refresh: "Refresh", reason_low_confidence: "Bot unsure", reason_fallback: "Bot did not understand",
      reason_handoff: "Handed to an agent", reason_flagged: "Agent says misunderstood",
      review_count: "{count} message groups to review", review_empty: "Nothing left to review.",
      messages_count: "{count} messages", guessed: "Bot guessed: {intent} ({percent}%)", guessed_none: "Bot had no guess",
      label_placeholder: "right intent", label: "Label", dismiss: "Dismiss", mark: "Mark entity",
      mark_help: "Select part of the message, then press “Mark entity”.", entity_placeholder: "entity name",
      mark_ok: "Add", labelled: "Labelled {count} messages as “{intent}” ({added} new examples).",
      dismissed: "Dismissed {count} messages.", choose_intent: "Enter an intent.",
      retrain: "Retrain", start_training: "Train",
      retrain_help: "Train a new model on the current data and compare it with the model answering now.",
      training: "Training…", job_failed: "Training failed: {error}", stage_preparing: "Preparing the data",
      stage_training: "Training the new model", stage_testing: "Testing the new model",
      stage_comparing: "Comparing with the active model", stage_done: "Done",
      active_model: "Active model: {version}", no_active_model: "No model is active",
      comparison: "New model compared with the active one", verdict_better: "Better", verdict_worse: "Worse",
      verdict_same: "About the same",
      verdict_change: "{change} points of {metric} on the {set}", set_holdout: "held-out set", set_review: "review set",
      metric_accuracy: "accuracy", metric_macro_f1: "macro F1", verdict_new: "First model", holdout_set: "Held-out test set ({n} examples)",
      review_set: "Labelled messages ({n})", metric: "Metric", active: "Active", candidate: "New model",
      change: "Change", accuracy: "Accuracy", per_intent: "Changes per intent", no_intent_change: "No intent changed.",
      better_flips: "Now right ({count})", worse_flips: "Now wrong ({count})", none: "None.",
      flip: "{active} → {candidate}", not_comparable: "The active model learnt these test examples, so its score here is optimistic.",
      activate: "Activate", activate_candidate: "Activate the new model", discard: "Discard this model",
      activated: "Model {version} activated.", discarded: "Model {version} discarded.",
      confirm_worse: "The new model is worse than the active one. Activate anyway?",
      intents: "Intents", new_intent: "new intent", add: "Add", import_export: "Import / export (Rasa YAML)",
      export: "Download nlu.yml", merge: "Merge", replace: "Replace everything", import: "Import",
      imported: "Imported: {added} added, {updated} updated, {removed} removed, {unchanged} unchanged.",
      search: "Search examples…", all_intents: "All intents", search_button: "Search", new_example: "New example",
      intent: "Intent", add_example: "Add example", text: "Text", entities: "Entities", examples_count: "{count} examples",
      holdout: "held out for testing", edit: "Edit", save: "Save", cancel: "Cancel", delete: "Delete",
      confirm_delete: "Delete this example?", move_to: "Move to…", saved: "Saved.", example_added: "Example added.",
      example_deleted: "Example deleted.", intent_added: "Intent {name} added.", faq: "FAQ answers of “{intent}”",
      faq_none: "This intent has no FAQ answer.", faq_vi: "Vietnamese", faq_en: "English",
      faq_keywords: "Keywords (comma separated)", faq_hide: "Hide", faq_revert: "Back to the original",
      faq_new: "Add an answer", faq_id: "answer id", faq_hidden: "(hidden)", faq_origin_file: "from the data files",
      faq_origin_edited: "edited", faq_origin_added: "added here", models: "Model versions", version: "Version",
      created: "Created", verdict: "Verdict",
      models_help: "Activate a version to answer with it at once; activate an earlier one to roll back.",
      is_active: "active", rollback: "Roll back to this one", when: "When", who: "Who", what: "Change",
      details: "Details", actor_system: "system", actor_cli: "command line", error: "Error: {reason}",
      nav_menu: "Menu", nav_label: "Navigation", nav_inbox: "Inbox", nav_reports: "Reports", nav_canned: "Canned responses",
      nav_agents: "Agents", nav_teams: "Teams", nav_sla: "SLA & hours", nav_channels: "Channels",
      nav_training: "Bot training",
    },
  };
  // one language choice for every CareDesk page (the inbox's key and cookie)
  const LANG_KEY = "caredesk.inbox.lang";
  let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "vi";

  function rememberLanguage() {
    localStorage.setItem(LANG_KEY, lang);
    for (const path of ["/inbox", "/reports", "/admin"]) {
      document.cookie = `caredesk_inbox_lang=${lang}; path=${path}; max-age=31536000; samesite=lax`;
    }
  }

  for (const language of Object.keys(ENTITY_STRINGS)) Object.assign(STRINGS[language], ENTITY_STRINGS[language]);

  function t(key, values = {}) {
    const text = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.vi[key] || key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
  }

  function translatePage() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    $("#lang").textContent = lang === "vi" ? "English" : "Tiếng Việt";
    document.title = `CareDesk · ${t("title")}`;
  }

  // ---------------------------------------------------------------- DOM and API helpers

  class ApiError extends Error {
    constructor(status, detail) {
      super(Array.isArray(detail) ? detail.map((item) => item.msg).join("; ") : String(detail));
      this.status = status;
    }
  }

  function csrfToken() {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === "caredesk_csrf") return decodeURIComponent(rest.join("="));
    }
    return sessionStorage.getItem("caredesk_csrf") || "";
  }

  async function api(path, { method = "GET", body, raw, contentType } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    let payload;
    if (raw !== undefined) {
      payload = raw;
      headers["Content-Type"] = contentType || "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    if (response.status === 401 && path !== "/api/auth/session") {
      showLogin();
      throw new ApiError(401, "session expired");
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
    return data;
  }

  let flashTimer = null;
  function flash(message, kind = "info") {
    const el = $("#flash");
    el.textContent = message;
    el.className = `flash ${kind}`;
    el.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 10000 : 5000);
  }

  function failed(error) { flash(t("error", { reason: error.message || error }), "error"); }

  const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`);
  const signed = (value) => (value === null || value === undefined ? "–"
    : `${value > 0 ? "+" : value < 0 ? "−" : ""}${Math.abs(value * 100).toFixed(1)}`);
  const when = (iso) => new Date(iso).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB");

  // ---------------------------------------------------------------- state

  const state = {
    me: null, intents: [], activeVersion: null, selectedIntent: "", job: null, events: null, pollTimer: null,
    agents: new Map(), reviewCount: 0,
  };

  // ---------------------------------------------------------------- login

  function showLogin() {
    $("#app").hidden = true;
    $("#tabs").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
  }

  async function logIn(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const session = await api("/api/auth/session", {
        method: "POST", body: { email: form.email.value, password: form.password.value } });
      sessionStorage.setItem("caredesk_csrf", session.csrf_token);
      form.password.value = "";
      await start();
    } catch (error) {
      flash(t("login_failed", { reason: error.message }), "error");
    }
  }

  async function logOut() {
    try { await api("/api/auth/logout", { method: "POST" }); } catch (_) { /* gone already */ }
    showLogin();
  }

  // ---------------------------------------------------------------- tabs

  function showTab(name) {
    for (const button of document.querySelectorAll("#tabs [data-tab]")) {
      button.classList.toggle("active", button.dataset.tab === name);
    }
    for (const section of document.querySelectorAll("main .tab")) section.hidden = section.id !== `tab-${name}`;
    if (name === "review") loadReview().catch(failed);
    if (name === "data") Promise.all([loadIntents(), loadExamples(), loadFaq()]).catch(failed);
    if (name === "models") loadModels().catch(failed);
    if (name === "changes") loadChanges().catch(failed);
    if (name === "parked") loadParked().catch(failed);
  }

  // ---------------------------------------------------------------- intents (shared by every tab)

  async function loadIntents() {
    const data = await api("/api/nlu/intents");
    state.intents = data.data;
    $("#intent-names").replaceChildren(...state.intents.map((intent) => h("option", { value: intent.name })));
    const select = $("#search-intent");
    select.replaceChildren(h("option", { value: "" }, t("all_intents")),
      ...state.intents.map((intent) => h("option", { value: intent.name, selected: intent.name === state.selectedIntent },
        intent.name)));
    $("#intents").replaceChildren(...state.intents.map((intent) => h("li", {
      class: intent.name === state.selectedIntent ? "selected" : "",
      dataset: { intent: intent.name },
      onclick: () => selectIntent(intent.name === state.selectedIntent ? "" : intent.name),
    }, h("span", {}, intent.name), h("span", { class: "muted" }, String(intent.examples)))));
  }

  async function loadEntityNames() {
    const names = (await api("/api/nlu/entities")).data;
    $("#entity-names").replaceChildren(...names.map((name) => h("option", { value: name })));
  }

  function selectIntent(name) {
    state.selectedIntent = name;
    $("#search-intent").value = name;
    for (const li of document.querySelectorAll("#intents li")) li.classList.toggle("selected", li.dataset.intent === name);
    Promise.all([loadExamples(), loadFaq()]).catch(failed);
  }

  // ---------------------------------------------------------------- review queue

  async function loadReview() {
    const form = $("#review-filters");
    const params = new URLSearchParams({ limit: "100" });
    for (const name of ["channel", "days", "reason"]) if (form[name].value) params.set(name, form[name].value);
    const data = await api(`/api/nlu/review?${params}`);
    state.reviewCount = data.count;
    showReviewCount();
    $("#review-groups").replaceChildren(...data.data.map(groupElement));
  }

  function showReviewCount() {
    $("#review-count").textContent = state.reviewCount ? t("review_count", { count: state.reviewCount }) : t("review_empty");
  }

  /** A group was labelled or dismissed: take it off the list, leaving what the admin typed in the others. */
  function groupDone(article) {
    article.remove();
    state.reviewCount = Math.max(0, (state.reviewCount || 1) - 1);
    showReviewCount();
  }

  function groupElement(group) {
    const shown = group.texts[0] || "";
    const entities = annotator(shown, { t, flash });
    const intentInput = h("input", { class: "label-intent", list: "intent-names", maxlength: "100",
      placeholder: t("label_placeholder"), "aria-label": t("label_placeholder") });
    const guess = Object.entries(group.predicted).sort((a, b) => b[1] - a[1])[0];
    const confidence = guess && group.messages.find((m) => m.predicted_intent === guess[0] && m.confidence !== null);
    async function label() {
      const intent = intentInput.value.trim();
      if (!intent) { flash(t("choose_intent"), "error"); intentInput.focus(); return; }
      try {
        const outcome = await api(`/api/nlu/review/${encodeURIComponent(group.id)}/label`, {
          method: "POST", body: { intent, text: shown, entities: entities.marks() } });
        flash(t("labelled", { count: outcome.messages, intent: outcome.intent, added: outcome.added.length }));
        groupDone(article);
        await loadIntents();
      } catch (error) { failed(error); }
    }

    async function dismiss() {
      try {
        const outcome = await api(`/api/nlu/review/${encodeURIComponent(group.id)}/dismiss`, { method: "POST" });
        flash(t("dismissed", { count: outcome.dismissed }));
        groupDone(article);
      } catch (error) { failed(error); }
    }

    const article = h("article", { class: "group", dataset: { group: group.id } },
      h("div", { class: "meta" },
        h("span", { class: "chip count", title: t("messages_count", { count: group.count }) }, String(group.count)),
        Object.keys(group.reasons).map((reason) => h("span", { class: `chip reason-${reason}` }, t(`reason_${reason}`))),
        Object.keys(group.channels).map((channel) => h("span", { class: "chip" }, channel)),
        h("span", { class: "guess" }, guess && guess[0] !== "?"
          ? t("guessed", { intent: guess[0], percent: Math.round(((confidence && confidence.confidence) || 0) * 100) })
          : t("guessed_none")),
        h("time", { datetime: group.newest_at }, when(group.newest_at))),
      entities.sample,
      group.texts.length > 1 && h("ul", { class: "variants" }, group.texts.slice(1).map((text) => h("li", {}, text))),
      entities.panel,
      h("div", { class: "actions" },
        intentInput,
        h("button", { type: "button", class: "primary label", onclick: label }, t("label")),
        h("button", { type: "button", class: "mark", onmousedown: (event) => event.preventDefault(), onclick: entities.startMark }, t("mark")),
        h("button", { type: "button", class: "dismiss", onclick: dismiss }, t("dismiss"))));
    intentInput.addEventListener("keydown", (event) => { if (event.key === "Enter") label(); });
    return article;
  }

  // ---------------------------------------------------------------- retraining and the comparison

  const STAGES = [
    [/^prepar/, "stage_preparing"], [/^training|^saving/, "stage_training"], [/^testing|^candidate tested/, "stage_testing"],
    [/^comparing/, "stage_comparing"], [/^done/, "stage_done"],
  ];
  function stageName(stage) {
    const known = STAGES.find(([pattern]) => pattern.test(stage || ""));
    return known ? t(known[1]) : stage;
  }

  function showProgress(stage, progress) {
    $("#job").hidden = false;
    $("#job-progress").value = Math.max(0, Math.min(1, progress || 0));
    $("#job-stage").textContent = `${stageName(stage)} · ${Math.round((progress || 0) * 100)}%`;
  }

  async function startTraining() {
    $("#train").disabled = true;
    $("#comparison").hidden = true;
    try {
      const job = await api("/api/nlu/train", { method: "POST" });
      follow(job);
    } catch (error) {
      $("#train").disabled = false;
      failed(error);
    }
  }

  function stopFollowing() {
    if (state.events) state.events.close();
    state.events = null;
    clearTimeout(state.pollTimer);
  }

  /** Follow a running job live (server-sent events), falling back to polling if the stream breaks. */
  function follow(job) {
    stopFollowing();
    state.job = job;
    $("#train").disabled = true;
    showProgress(job.stage, job.progress);
    const source = new EventSource(`/api/nlu/jobs/${job.id}/events`);
    state.events = source;
    source.addEventListener("progress", (event) => {
      const data = JSON.parse(event.data);
      showProgress(data.stage, data.progress);
    });
    source.addEventListener("job", (event) => {
      const current = JSON.parse(event.data);
      if (current.status === "running" || current.status === "queued") {
        showProgress(current.stage, current.progress);
        return;
      }
      stopFollowing();
      finished(current);
    });
    source.onerror = () => {
      if (state.events !== source) return;
      stopFollowing();
      poll(job.id);
    };
  }

  async function poll(jobId) {
    try {
      const job = await api(`/api/nlu/jobs/${jobId}`);
      if (job.status === "running" || job.status === "queued") {
        showProgress(job.stage, job.progress);
        state.pollTimer = setTimeout(() => poll(jobId), 500);
      } else {
        finished(job);
      }
    } catch (error) {
      failed(error);
      $("#train").disabled = false;
    }
  }

  function finished(job) {
    state.job = job;
    $("#train").disabled = false;
    if (job.status === "succeeded") {
      showProgress("done", 1);
      renderComparison(job);
    } else {
      $("#job").hidden = true;
      flash(t("job_failed", { error: job.error || job.status }), "error");
    }
    loadModels().catch(failed);
  }

  function scoreRows(section) {
    const metrics = [["accuracy", t("accuracy")], ["macro_f1", "Macro F1"]];
    return metrics.map(([key, name]) => {
      const before = section.active ? section.active[key] : null;
      const after = section.candidate ? section.candidate[key] : null;
      const delta = section.delta ? section.delta[key] : null;
      return h("tr", { dataset: { metric: key } }, h("td", {}, name), h("td", { class: "num active-score" }, percent(before)),
        h("td", { class: "num candidate-score" }, percent(after)),
        h("td", { class: `num ${delta > 0 ? "up" : delta < 0 ? "down" : ""}` }, signed(delta)));
    });
  }

  function flipList(kind, flips, count) {
    return h("div", { class: `flip-list ${kind}`, dataset: { kind } },
      h("h3", {}, t(kind === "better" ? "better_flips" : "worse_flips", { count })),
      flips.length ? h("ul", {}, flips.map((flip) => h("li", { dataset: { set: flip.set } },
        h("span", { class: "flip-text" }, flip.text), " ",
        h("span", { class: "muted" }, `(${flip.intent}) `),
        h("code", {}, t("flip", { active: flip.active, candidate: flip.candidate })))))
        : h("p", { class: "muted" }, t("none")));
  }

  function renderComparison(job) {
    const c = job.comparison;
    const box = $("#comparison");
    if (!c) { box.hidden = true; return; }
    const changed = c.per_intent.filter((row) => row.change !== null && Math.abs(row.change) > 1e-9);
    const sections = [["holdout", "holdout_set"], ["review", "review_set"]].filter(([key]) => c[key].n > 0);
    const undecided = !job.decision && c.candidate_version !== state.activeVersion;
    fill(box,
      h("h2", {}, t("comparison"), " ", h("span", { class: `verdict ${c.verdict}`, id: "verdict", dataset: { verdict: c.verdict } },
        t(`verdict_${c.verdict}`)),
        c.headline && h("span", { class: `verdict-change ${c.verdict}`, id: "verdict-change" }, " ",
          t("verdict_change", { change: signed(c.headline.change), metric: t(`metric_${c.headline.metric}`),
            set: t(`set_${c.headline.set}`) }))),
      h("p", { class: "muted" }, h("code", { class: "version" }, c.active_version || "–"), " → ",
        h("code", { class: "version candidate-version" }, c.candidate_version)),
      h("ul", { class: "reasons" }, c.reasons.map((reason) => h("li", {}, reason))),
      c.holdout.comparable === false && c.active_version && h("p", { class: "muted note" }, t("not_comparable")),
      h("div", { class: "score-tables" }, sections.map(([key, title]) => h("table", { class: "scores", dataset: { set: key } },
        h("caption", {}, t(title, { n: c[key].n })),
        h("thead", {}, h("tr", {}, h("th", {}, t("metric")), h("th", { class: "num" }, t("active")),
          h("th", { class: "num" }, t("candidate")), h("th", { class: "num" }, t("change")))),
        h("tbody", {}, scoreRows(c[key]))))),
      h("h3", {}, t("per_intent")),
      changed.length ? h("table", { class: "per-intent" },
        h("thead", {}, h("tr", {}, h("th", {}, t("intent")), h("th", { class: "num" }, t("active")),
          h("th", { class: "num" }, t("candidate")), h("th", { class: "num" }, t("change")))),
        h("tbody", {}, changed.map((row) => h("tr", {}, h("td", {}, row.intent), h("td", { class: "num" }, percent(row.active_f1)),
          h("td", { class: "num" }, percent(row.candidate_f1)),
          h("td", { class: `num ${row.change > 0 ? "up" : "down"}` }, signed(row.change))))))
        : h("p", { class: "muted" }, t("no_intent_change")),
      entitySection(c.entities, { t, percent, signed }),
      h("div", { class: "flips" }, flipList("better", c.flips.better, c.flips.better_count),
        flipList("worse", c.flips.worse, c.flips.worse_count)),
      undecided && h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", id: "activate-candidate",
          onclick: () => activate(c.candidate_version, c.verdict === "worse") }, t("activate_candidate")),
        h("button", { type: "button", class: "danger", id: "discard-candidate",
          onclick: () => discard(c.candidate_version) }, t("discard"))));
    box.hidden = false;
  }

  // ---------------------------------------------------------------- models

  function showActive(version) {
    state.activeVersion = version;
    const el = $("#active-model");
    el.replaceChildren(version ? t("active_model", { version: "" }) : t("no_active_model"),
      version ? h("code", { class: "version", id: "active-version" }, version) : "");
  }

  async function loadModels() {
    const data = await api("/api/nlu/models");
    showActive(data.active);
    $("#models").replaceChildren(...data.data.map((model) => {
      const metrics = model.metrics || {};
      return h("tr", { class: model.active ? "active-model" : "", dataset: { version: model.version } },
        h("td", {}, h("code", { class: "version" }, model.version), model.active ? h("span", { class: "chip" }, t("is_active")) : ""),
        h("td", {}, when(model.created_at)),
        h("td", { class: "num" }, percent(metrics.accuracy)),
        h("td", { class: "num" }, percent(metrics.macro_f1)),
        h("td", {}, metrics.verdict ? h("span", { class: `verdict ${metrics.verdict}` }, t(`verdict_${metrics.verdict}`)) : ""),
        h("td", { class: "actions" }, !model.active && [
          h("button", { type: "button", class: "activate", onclick: () => activate(model.version, false) },
            model.decision === "activated" ? t("rollback") : t("activate")),
          h("button", { type: "button", class: "danger discard", onclick: () => discard(model.version) }, t("discard"))]));
    }));
  }

  async function activate(version, worse) {
    if (worse && !window.confirm(t("confirm_worse"))) return;
    try {
      const result = await api(`/api/nlu/models/${encodeURIComponent(version)}/activate`, { method: "POST" });
      showActive(result.version);
      flash(t("activated", { version: result.version }));
      if (state.job && state.job.comparison && state.job.comparison.candidate_version === version) {
        state.job.decision = "activated";
        renderComparison(state.job);
      }
      await loadModels();
    } catch (error) { failed(error); }
  }

  async function discard(version) {
    try {
      await api(`/api/nlu/models/${encodeURIComponent(version)}/discard`, { method: "POST" });
      flash(t("discarded", { version }));
      if (state.job && state.job.comparison && state.job.comparison.candidate_version === version) {
        $("#comparison").hidden = true;
        $("#job").hidden = true;
      }
      await loadModels();
    } catch (error) { failed(error); }
  }

  // ---------------------------------------------------------------- examples

  async function loadExamples() {
    const form = $("#example-search");
    const params = new URLSearchParams({ limit: "200" });
    if (form.q.value.trim()) params.set("q", form.q.value.trim());
    if (state.selectedIntent) params.set("intent", state.selectedIntent);
    const data = await api(`/api/nlu/examples?${params}`);
    $("#example-count").textContent = t("examples_count", { count: data.count });
    $("#examples").replaceChildren(...data.data.map(exampleRow));
  }

  function entityChips(example) {
    return example.entities.map((entity) => h("span", { class: "chip" },
      `${example.text.slice(entity.start, entity.end)} → ${entity.entity}${entity.value !== example.text.slice(entity.start, entity.end) ? ` (${entity.value})` : ""}`));
  }

  function exampleRow(example) {
    const textCell = h("td", { class: "example-text" }, example.text,
      example.holdout ? h("span", { class: "chip muted", title: t("holdout") }, t("holdout")) : "");
    const move = h("select", { class: "move", "aria-label": t("move_to") },
      state.intents.map((intent) => h("option", { value: intent.name, selected: intent.name === example.intent }, intent.name)));
    move.addEventListener("change", async () => {
      try {
        await api(`/api/nlu/examples/${example.id}`, { method: "PATCH", body: { intent: move.value } });
        flash(t("saved"));
        await Promise.all([loadIntents(), loadExamples()]);
      } catch (error) { failed(error); move.value = example.intent; }
    });
    const row = h("tr", { dataset: { id: example.id } }, textCell, h("td", {}, move), h("td", {}, entityChips(example)),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "edit", onclick: () => editText() }, t("edit")),
        h("button", { type: "button", class: "danger delete", onclick: () => remove() }, t("delete"))));

    function editText() {
      const input = h("input", { value: example.text, maxlength: "2000", class: "edit-text" });
      const form = h("form", { class: "inline" }, input, h("button", { type: "submit", class: "primary" }, t("save")),
        h("button", { type: "button", onclick: () => loadExamples().catch(failed) }, t("cancel")));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await api(`/api/nlu/examples/${example.id}`, { method: "PATCH", body: { text: input.value } });
          flash(t("saved"));
          await loadExamples();
        } catch (error) { failed(error); }
      });
      textCell.replaceChildren(form);
      input.focus();
    }

    async function remove() {
      if (!window.confirm(t("confirm_delete"))) return;
      try {
        await api(`/api/nlu/examples/${example.id}`, { method: "DELETE" });
        flash(t("example_deleted"));
        await Promise.all([loadIntents(), loadExamples()]);
      } catch (error) { failed(error); }
    }
    return row;
  }

  async function addExample(event) {
    event.preventDefault();
    const form = event.target;
    try {
      await api("/api/nlu/examples", { method: "POST", body: { text: form.text.value, intent: form.intent.value.trim() } });
      flash(t("example_added"));
      form.text.value = "";
      await Promise.all([loadIntents(), loadExamples()]);
    } catch (error) { failed(error); }
  }

  async function addIntent(event) {
    event.preventDefault();
    const form = event.target;
    const name = form.name.value.trim();
    try {
      await api("/api/nlu/intents", { method: "POST", body: { name } });
      form.name.value = "";
      flash(t("intent_added", { name }));
      await loadIntents();
      selectIntent(name);
    } catch (error) { failed(error); }
  }

  async function importFile(event) {
    event.preventDefault();
    const form = event.target;
    const file = form.file.files[0];
    if (!file) return;
    try {
      const summary = await api(`/api/nlu/import?mode=${form.mode.value}`, {
        method: "POST", raw: await file.arrayBuffer(), contentType: "application/x-yaml" });
      flash(t("imported", summary));
      await Promise.all([loadIntents(), loadExamples()]);
    } catch (error) { failed(error); }
  }

  // ---------------------------------------------------------------- FAQ answers of the selected intent

  async function loadFaq() {
    const box = $("#faq");
    const intent = state.selectedIntent;
    if (!intent) { box.hidden = true; return; }
    const data = await api(`/api/nlu/faq?intent=${encodeURIComponent(intent)}`);
    box.replaceChildren(h("h2", {}, t("faq", { intent })),
      ...(data.data.length ? data.data.map(faqEntry) : [h("p", { class: "muted" }, t("faq_none"))]),
      newFaqForm(intent));
    box.hidden = false;
  }

  function faqFields(answer) {
    return {
      vi: h("textarea", { name: "vi", maxlength: "4000" }, answer.vi || ""),
      en: h("textarea", { name: "en", maxlength: "4000" }, answer.en || ""),
    };
  }

  function faqEntry(entry) {
    const fields = faqFields(entry.answer);
    const keywords = h("input", { name: "keywords", value: entry.keywords.join(", ") });
    const form = h("form", { class: `faq-entry ${entry.hidden ? "hidden-entry" : ""}`, dataset: { faq: entry.id } },
      h("p", {}, h("code", {}, entry.id), " ", h("span", { class: "muted" }, t(`faq_origin_${entry.origin}`)),
        entry.hidden ? h("span", { class: "muted" }, ` ${t("faq_hidden")}`) : ""),
      h("label", {}, t("faq_vi"), fields.vi), h("label", {}, t("faq_en"), fields.en),
      h("label", {}, t("faq_keywords"), keywords),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("save")),
        !entry.hidden && h("button", { type: "button", class: "danger", onclick: () => faqAction("DELETE", entry.id) }, t("faq_hide")),
        entry.origin === "edited" && h("button", { type: "button", onclick: () => faqAction("POST", entry.id, "/revert") }, t("faq_revert"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await saveFaq(entry.id, entry.intent, fields, keywords.value, entry.links);
    });
    return form;
  }

  function newFaqForm(intent) {
    const id = h("input", { name: "id", placeholder: t("faq_id"), required: true, maxlength: "100", pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]*" });
    const fields = faqFields({});
    const keywords = h("input", { name: "keywords" });
    const form = h("form", { class: "faq-entry faq-new" }, h("h3", {}, t("faq_new")), id,
      h("label", {}, t("faq_vi"), fields.vi), h("label", {}, t("faq_en"), fields.en),
      h("label", {}, t("faq_keywords"), keywords), h("button", { type: "submit" }, t("add")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await saveFaq(id.value.trim(), intent, fields, keywords.value, []);
    });
    return form;
  }

  async function saveFaq(id, intent, fields, keywords, links) {
    const answer = {};
    if (fields.vi.value.trim()) answer.vi = fields.vi.value;
    if (fields.en.value.trim()) answer.en = fields.en.value;
    try {
      await api(`/api/nlu/faq/${encodeURIComponent(id)}`, { method: "PUT", body: {
        intent, answer, keywords: keywords.split(",").map((k) => k.trim()).filter(Boolean), links } });
      flash(t("saved"));
      await loadFaq();
    } catch (error) { failed(error); }
  }

  async function faqAction(method, id, suffix = "") {
    try {
      await api(`/api/nlu/faq/${encodeURIComponent(id)}${suffix}`, { method });
      flash(t("saved"));
      await loadFaq();
    } catch (error) { failed(error); }
  }

  // ---------------------------------------------------------------- change log

  function actorName(entry) {
    if (entry.actor_type === "agent") return state.agents.get(entry.actor_id) || `#${entry.actor_id}`;
    return t(`actor_${entry.actor_type}`);
  }

  function changeSummary(entry) {
    const details = entry.details || {};
    const parts = [];
    for (const side of ["before", "after"]) {
      const value = details[side];
      if (value && typeof value === "object" && value.intent) parts.push(`${side === "before" ? "" : "→ "}${value.intent}`);
    }
    for (const key of ["messages", "added", "updated", "removed", "examples", "moved_to"]) {
      if (details[key] !== undefined && details[key] !== null) {
        parts.push(`${key}: ${Array.isArray(details[key]) ? details[key].length : details[key]}`);
      }
    }
    return parts.join(" · ");
  }

  async function loadChanges() {
    if (!state.agents.size) {
      try {
        const agents = await api("/api/agents");
        for (const agent of agents.data) state.agents.set(agent.id, agent.name || agent.email);
      } catch (_) { /* names are a nicety */ }
    }
    const data = await api("/api/nlu/changes?limit=200");
    $("#changes").replaceChildren(...data.data.map((entry) => h("tr", { dataset: { action: entry.action } },
      h("td", {}, when(entry.created_at)), h("td", {}, actorName(entry)), h("td", {}, h("code", {}, entry.action)),
      h("td", {}, h("div", {}, entry.subject), h("div", { class: "muted" }, changeSummary(entry))))));
  }

  // ---------------------------------------------------------------- parked messages

  async function loadParked() {
    const data = await api("/api/admin/parked-events?limit=200");
    $("#parked-empty").hidden = data.count > 0;
    $("#parked").replaceChildren(...data.data.map((event) => {
      const retry = h("button", { type: "button", class: "primary", dataset: { event: String(event.id) } }, t("parked_retry"));
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        try {
          await api(`/api/admin/parked-events/${event.id}/retry`, { method: "POST" });
          flash(t("parked_queued"));
          await loadParked();
        } catch (error) {
          retry.disabled = false;
          failed(error);
        }
      });
      return h("tr", { dataset: { parked: String(event.id) } },
        h("td", {}, when(event.parked_at)), h("td", {}, event.channel),
        h("td", {}, event.text || ""), h("td", {}, h("code", {}, event.error || "")), h("td", {}, retry));
    }));
  }

  // ---------------------------------------------------------------- start

  async function resumeLatestJob() {
    const jobs = await api("/api/nlu/jobs?limit=1");
    const job = jobs.data[0];
    if (!job) return;
    if (job.status === "running" || job.status === "queued") follow(job);
    else if (job.status === "succeeded" && !job.decision && job.candidate_version !== state.activeVersion) {
      state.job = job;
      renderComparison(job);
    }
  }

  async function start() {
    if (!csrfToken()) {
      showLogin();  // no browser session yet: nothing to ask the server
      return;
    }
    let me;
    try {
      me = await api("/api/me");
    } catch (error) {
      if (error.status !== 401) failed(error);
      return;
    }
    state.me = me;
    if (me.role !== "admin") {
      showLogin();
      flash(t("admins_only"), "error");
      return;
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#tabs").hidden = false;
    $("#logout").hidden = false;
    showTab("review");
    await Promise.all([loadIntents(), loadModels(), loadEntityNames()]);
    await resumeLatestJob();
  }

  document.addEventListener("DOMContentLoaded", () => {
    translatePage();
    $("#login-form").addEventListener("submit", logIn);
    $("#logout").addEventListener("click", logOut);
    $("#lang").addEventListener("click", () => {
      lang = lang === "vi" ? "en" : "vi";
      rememberLanguage();
      translatePage();
      if (!$("#app").hidden) {
        const active = document.querySelector("#tabs .active");
        showTab(active ? active.dataset.tab : "review");
        showActive(state.activeVersion);
        if (state.job && state.job.status === "succeeded" && !$("#comparison").hidden) renderComparison(state.job);
      }
    });
    for (const button of document.querySelectorAll("#tabs [data-tab]")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    $("#review-filters").addEventListener("submit", (event) => { event.preventDefault(); loadReview().catch(failed); });
    for (const select of document.querySelectorAll("#review-filters select")) {
      select.addEventListener("change", () => loadReview().catch(failed));
    }
    $("#train").addEventListener("click", startTraining);
    $("#example-search").addEventListener("submit", (event) => {
      event.preventDefault();
      state.selectedIntent = $("#search-intent").value;
      Promise.all([loadExamples(), loadFaq()]).catch(failed);
    });
    $("#example-form").addEventListener("submit", addExample);
    $("#intent-form").addEventListener("submit", addIntent);
    $("#import-form").addEventListener("submit", importFile);
    start().catch(failed);
  });
})();
