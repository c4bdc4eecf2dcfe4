// The agents page: invite (the temporary password is shown once), and per account its role, teams,
// capacity, and deactivate / reactivate. Refusals (oneself, the last admin) are said in words.
import { api, fill, boot, button, failed, field, flash, h, onLanguageChange, t } from "/admin/static/common.js";

const ROLES = ["agent", "supervisor", "admin"];
const KNOWN = {
  "your own account": "admin.agents.error_self",
  "last active admin": "admin.agents.error_last_admin",
  "already exists": "admin.agents.error_exists",
};
const body = document.getElementById("admin-body");
let agents = [];
let teams = [];
let invited = null; // the last invitation's answer, shown until the page is left

function roleSelect(value) {
  const select = h("select", {}, ROLES.map((role) =>
    h("option", { value: role, "data-i18n": `admin.role.${role}` }, t(`admin.role.${role}`))));
  select.value = value;
  return select;
}

function teamChoices(chosen, prefix) {
  if (!teams.length) return h("p", { class: "muted small", "data-i18n": "admin.agents.no_teams" }, t("admin.agents.no_teams"));
  return h("fieldset", { class: "admin-checks" },
    h("legend", { "data-i18n": "admin.agents.teams" }, t("admin.agents.teams")),
    teams.map((team) => {
      const id = `${prefix}-team-${team.id}`;
      return h("label", { class: "admin-check", for: id },
        h("input", { type: "checkbox", id, value: team.name, checked: chosen.includes(team.name) }), team.name);
    }));
}

function checkedTeams(root) {
  return [...root.querySelectorAll(".admin-checks input:checked")].map((box) => box.value);
}

function activeAdmins() {
  return agents.filter((a) => a.role === "admin" && a.is_active).length;
}

function inviteForm() {
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const role = roleSelect("agent");
  const capacity = h("input", { type: "number", name: "capacity", min: 1, max: 100, value: 5, inputmode: "numeric" });
  const form = h("form", { class: "card admin-form", id: "invite-form" },
    h("h2", { "data-i18n": "admin.agents.invite_title" }, t("admin.agents.invite_title")),
    field("admin.agents.email", email), field("admin.agents.name", name), field("admin.agents.role", role),
    field("admin.agents.capacity", capacity, "admin.agents.capacity_hint"), teamChoices([], "invite"),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-i18n": "admin.agents.invite" }, t("admin.agents.invite"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("/api/agents", { method: "POST", body: {
        email: email.value.trim(), name: name.value.trim(), role: role.value, capacity: Number(capacity.value),
        teams: checkedTeams(form) } });
      invited = created;
      await load();
      flash(t("admin.agents.invited", { name: created.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function invitedBox() {
  if (!invited || !invited.temporary_password) return null;
  return h("section", { class: "card admin-secret", id: "invite-result" },
    h("h2", {}, t("admin.agents.invited", { name: invited.name })),
    h("p", {}, t("admin.agents.temporary_password_text", { email: invited.email })),
    h("p", {}, h("code", { id: "temporary-password", class: "admin-code" }, invited.temporary_password)),
    h("p", { class: "muted small" }, t("admin.agents.temporary_password_once")));
}

function agentCard(agent) {
  const me = agent.id === boot.agent.id;
  const role = roleSelect(agent.role);
  const capacity = h("input", { type: "number", min: 1, max: 100, value: agent.capacity, inputmode: "numeric" });
  const card = h("li", { class: `card admin-item${agent.is_active ? "" : " admin-item-off"}`, dataset: { agentId: agent.id } },
    h("div", { class: "admin-item-head" },
      h("div", {}, h("strong", { class: "agent-name" }, agent.name), me ? h("span", { class: "badge" }, t("admin.agents.you")) : null,
        h("div", { class: "muted small admin-wrap" }, agent.email)),
      h("span", { class: `badge ${agent.is_active ? "badge-on" : "badge-off"}` },
        t(agent.is_active ? "admin.agents.active" : "admin.agents.inactive"))),
    field("admin.agents.role", role), field("admin.agents.capacity", capacity), teamChoices(agent.teams, `agent-${agent.id}`));
  const save = button("admin.save", { class: "btn btn-primary" });
  const toggle = button(agent.is_active ? "admin.agents.deactivate" : "admin.agents.reactivate",
    { class: agent.is_active ? "btn btn-danger" : "btn" });
  save.addEventListener("click", async () => {
    if (agent.role === "admin" && role.value !== "admin" && agent.is_active && activeAdmins() <= 1) {
      flash(t("admin.agents.error_last_admin"), "error");
      return;
    }
    try {
      await api(`/api/agents/${agent.id}`, { method: "PATCH", body: {
        role: role.value, capacity: Number(capacity.value), teams: checkedTeams(card) } });
      await load();
      flash(t("admin.agents.saved", { name: agent.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  toggle.addEventListener("click", async () => {
    if (agent.is_active && me) {
      flash(t("admin.agents.error_self"), "error");
      return;
    }
    if (agent.is_active && agent.role === "admin" && activeAdmins() <= 1) {
      flash(t("admin.agents.error_last_admin"), "error");
      return;
    }
    try {
      await api(`/api/agents/${agent.id}`, { method: "PATCH", body: { is_active: !agent.is_active } });
      await load();
      flash(t(agent.is_active ? "admin.agents.deactivated" : "admin.agents.reactivated", { name: agent.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  card.append(h("div", { class: "admin-actions" }, save, toggle));
  return card;
}

function render() {
  fill(body,
    invitedBox(),
    inviteForm(),
    h("section", { class: "admin-list-section" },
      h("h2", {}, t("admin.agents.list_title", { count: agents.length })),
      h("ul", { class: "admin-list", id: "agent-list" }, agents.map(agentCard))));
}

async function load() {
  const [list, teamList] = await Promise.all([api("/api/agents"), api("/api/teams")]);
  agents = list.data;
  teams = teamList;
  render();
}

onLanguageChange(render);
load().catch((error) => failed(error));
