// The teams page: create a team, rename it (its conversations and agents follow), choose its members.
import { api, fill, button, failed, field, flash, h, onLanguageChange, t } from "/admin/static/common.js";

const KNOWN = { "already exists": "admin.teams.error_exists" };
const body = document.getElementById("admin-body");
let teams = [];
let agents = [];

function createForm() {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const form = h("form", { class: "card admin-form", id: "team-form" },
    h("h2", { "data-i18n": "admin.teams.create_title" }, t("admin.teams.create_title")),
    field("admin.teams.name", name),
    h("div", { class: "admin-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-i18n": "admin.teams.create" }, t("admin.teams.create"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/api/teams", { method: "POST", body: { name: name.value.trim() } });
      await load();
      flash(t("admin.teams.created", { name: name.value.trim() }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function teamCard(team) {
  const name = h("input", { type: "text", value: team.name, maxlength: 100, required: true });
  const rename = button("admin.teams.rename");
  rename.addEventListener("click", async () => {
    try {
      await api(`/api/teams/${team.id}`, { method: "PATCH", body: { name: name.value.trim() } });
      await load();
      flash(t("admin.teams.renamed", { name: name.value.trim() }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  const members = h("fieldset", { class: "admin-checks" },
    h("legend", { "data-i18n": "admin.teams.members" }, t("admin.teams.members")),
    agents.length ? agents.map((agent) => {
      const id = `team-${team.id}-agent-${agent.id}`;
      return h("label", { class: "admin-check", for: id },
        h("input", { type: "checkbox", id, value: agent.id, checked: team.member_ids.includes(agent.id) }), agent.name);
    }) : h("p", { class: "muted small" }, t("admin.teams.no_agents")));
  const save = button("admin.teams.save_members", { class: "btn btn-primary" });
  save.addEventListener("click", async () => {
    const ids = [...members.querySelectorAll("input:checked")].map((box) => Number(box.value));
    try {
      await api(`/api/teams/${team.id}/members`, { method: "PUT", body: { agent_ids: ids } });
      await load();
      flash(t("admin.teams.members_saved", { name: team.name }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return h("li", { class: "card admin-item", dataset: { teamId: team.id } },
    h("div", { class: "admin-item-head" }, h("strong", { class: "team-name" }, team.name),
      h("span", { class: "badge" }, t("admin.teams.member_count", { count: team.member_ids.length }))),
    h("div", { class: "admin-inline" }, field("admin.teams.name", name), rename),
    members, h("div", { class: "admin-actions" }, save));
}

function render() {
  fill(body, createForm(),
    h("section", { class: "admin-list-section" },
      h("h2", {}, t("admin.teams.list_title", { count: teams.length })),
      teams.length ? h("ul", { class: "admin-list", id: "team-list" }, teams.map(teamCard))
        : h("p", { class: "muted" }, t("admin.teams.empty"))));
}

async function load() {
  const [teamList, agentList] = await Promise.all([api("/api/teams"), api("/api/agents")]);
  teams = teamList;
  agents = agentList.data.filter((agent) => agent.is_active);
  render();
}

onLanguageChange(render);
load().catch((error) => failed(error));
