// The login form: a browser session through /api/auth/session, then on to the inbox.
import { rememberCsrf } from "./api.js";
import { $, show } from "./dom.js";
import { initStrings, t } from "./i18n.js";

const boot = JSON.parse($("#inbox-boot").textContent);
const form = $("#login-form");
const error = $("#login-error");
const submit = $("#login-submit");

function fail(message) {
  error.textContent = message;
  show(error, true);
}

// The session's database row can land a moment after the login answer: wait until it is usable.
async function sessionReady() {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const response = await fetch("/api/me", { credentials: "same-origin" });
    if (response.ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function logIn(event) {
  event.preventDefault();
  show(error, false);
  const email = $("#login-email").value.trim();
  const password = $("#login-password").value;
  if (!email || !password) {
    fail(t("login.missing"));
    return;
  }
  submit.disabled = true;
  submit.textContent = t("login.submitting");
  try {
    const response = await fetch("/api/auth/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email, password }),
      credentials: "same-origin",
    });
    if (response.status === 429) {
      fail(t("login.rate_limited", { seconds: response.headers.get("Retry-After") || "60" }));
    } else if (response.status === 400 || response.status === 401 || response.status === 403) {
      fail(t("login.failed"));
    } else if (!response.ok) {
      fail(t("login.error"));
    } else {
      const session = await response.json();
      rememberCsrf(session.csrf_token);
      if (await sessionReady()) {
        location.assign(boot.next || "/inbox");
        return;
      }
      fail(t("login.error"));
    }
  } catch (_) {
    fail(t("login.error"));
  }
  submit.disabled = false;
  submit.textContent = t("login.submit");
}

await initStrings(boot);
if (new URLSearchParams(location.search).get("expired")) {
  const notice = $("#login-notice");
  notice.dataset.i18n = "login.expired";
  notice.textContent = t("login.expired");
  show(notice, true);
}
form.addEventListener("submit", logIn);
