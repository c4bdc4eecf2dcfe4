// The ZNS template mapping, on the channels page when ZNS is on: which approved template each care step
// sends and the names of template parameters CareDesk fills. Saving asks Zalo first; a mapping that
// cannot work is refused with every problem listed, and nothing changes.
import { api, ApiError, button, failed, field, flash, h, onLanguageChange, t } from "/admin/static/common.js";

const STEPS = ["thank_you", "rating_request", "usage_tips", "check_in", "nps", "maintenance", "warranty_expiry"];
let state = null;
let problems = [];

function parameterText(parameters) {
  return Object.entries(parameters || {}).map(([name, value]) => `${name}=${value}`).join("\n");
}

function stepSelect(step) {
  const select = h("select", { dataset: { step }, class: "zns-step" },
    h("option", { value: "" }, t("care_zns.none")),
    state.data.map((template) => h("option", { value: template.template_id },
      `${template.name} (${template.template_id}) · ${template.status}`)));
  select.value = state.mapping[step] || "";
  return field(`care_zns.step.${step}`, select);
}

function render() {
  if (!state) return;
  let section = document.getElementById("zns-mapping");
  if (!section) {
    section = h("section", { class: "card", id: "zns-mapping" });
    const body = document.getElementById("admin-body");
    body.parentNode.insertBefore(section, body.nextSibling);
  }
  const parameters = h("textarea", { id: "zns-parameters", rows: 3 });
  parameters.value = parameterText(state.parameters);
  const save = button("care_zns.save", { id: "zns-save", class: "btn btn-primary" });
  save.addEventListener("click", () => submit(section));
  section.replaceChildren(
    h("h2", {}, t("care_zns.title")),
    h("p", { class: "muted" }, t("care_zns.intro")),
    ...STEPS.map(stepSelect),
    field("care_zns.parameters", parameters, "care_zns.parameters_hint"),
    problems.length ? h("ul", { id: "zns-problems", class: "admin-error" }, problems.map((p) => h("li", {}, p))) : null,
    save);
}

function readParameters(text) {
  const parameters = {};
  for (const line of text.split("\n")) {
    const [name, ...rest] = line.split("=");
    if (name.trim() && rest.length) parameters[name.trim()] = rest.join("=").trim();
  }
  return parameters;
}

async function submit(section) {
  const templates = {};
  for (const select of section.querySelectorAll("select.zns-step")) {
    if (select.value) templates[select.dataset.step] = select.value;
  }
  const parameters = readParameters(section.querySelector("#zns-parameters").value);
  try {
    const saved = await api("/api/care/zns/templates", { method: "PUT", body: { templates, parameters } });
    state.mapping = saved.mapping;
    state.parameters = saved.parameters;
    problems = [];
    render();
    flash(t("care_zns.saved"));
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) {
      problems = error.detail.map((p) => (typeof p === "string" ? p : p.msg));
      render();
      flash(t("care_zns.refused"), "error");
    } else {
      failed(error);
    }
  }
}

export async function loadZnsMapping() {
  try {
    state = await api("/api/care/zns/templates");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 503)) return; // ZNS is off
    throw error;
  }
  state.parameters = state.parameters || {};
  render();
}

onLanguageChange(render);
