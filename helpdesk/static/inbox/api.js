// The JSON API as the browser uses it: session cookie, CSRF header on changes, back to login on 401.
const CSRF_COOKIE = "caredesk_csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function csrfToken() {
  return readCookie(CSRF_COOKIE) || sessionStorage.getItem(CSRF_COOKIE) || "";
}

export function rememberCsrf(token) {
  sessionStorage.setItem(CSRF_COOKIE, token);
}

let leaving = false;

/** Leave for the login page, coming back here afterwards. */
export function toLogin(expired = true) {
  if (leaving) return;
  leaving = true;
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/inbox/login?next=${next}${expired ? "&expired=1" : ""}`);
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    toLogin(true);
    throw new ApiError(401, "session expired");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
  return data;
}

/** A readable reason from an error (validation errors arrive as a list). */
export function describeError(error) {
  if (error instanceof ApiError) {
    if (Array.isArray(error.detail)) return error.detail.map((item) => item.msg).join("; ");
    return String(error.detail);
  }
  return String((error && error.message) || error);
}
