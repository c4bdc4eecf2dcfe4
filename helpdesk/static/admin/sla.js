// The SLA page: each priority's targets (business minutes), the opening hours of each weekday and the
// holidays, in the shop's time zone (a setting, shown here, not changed here).
import { api, fill, button, failed, field, flash, h, onLanguageChange, t } from "/admin/static/common.js";

const PRIORITIES = ["urgent", "high", "normal", "low"];
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const TARGETS = ["first_response_minutes", "next_response_minutes", "resolution_minutes"];
const KNOWN = { "cannot exceed": "admin.sla.error_order", "given twice": "admin.sla.error_holiday_twice" };
const body = document.getElementById("admin-body");
let policies = {};
let hours = null;

function minutesInput(value) {
  return h("input", { type: "number", min: 1, max: 525600, value: value ?? "", inputmode: "numeric", required: true });
}

function policyCard(priority) {
  const policy = policies[priority] || {};
  const inputs = Object.fromEntries(TARGETS.map((name) => [name, minutesInput(policy[name])]));
  const save = button("admin.save", { class: "btn btn-primary" });
  save.addEventListener("click", async () => {
    try {
      await api("/api/sla-policies", { method: "POST", body: { priority,
        ...Object.fromEntries(TARGETS.map((name) => [name, Number(inputs[name].value)])) } });
      await load();
      flash(t("admin.sla.policy_saved", { priority: t(`admin.priority.${priority}`) }));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return h("li", { class: "card admin-item", dataset: { priority } },
    h("div", { class: "admin-item-head" }, h("strong", {}, t(`admin.priority.${priority}`))),
    h("div", { class: "admin-grid3" }, TARGETS.map((name) => field(`admin.sla.${name}`, inputs[name]))),
    h("div", { class: "admin-actions" }, save));
}

// A time input cannot hold 24:00 (a period open until midnight): it shows 23:59, which is sent back as 24:00.
function periodRow(day, period) {
  const start = h("input", { type: "time", value: period.start, required: true, class: "period-start" });
  const end = h("input", { type: "time", value: period.end === "24:00" ? "23:59" : period.end, required: true, class: "period-end" });
  const remove = button("admin.remove", { class: "btn btn-ghost" });
  const row = h("div", { class: "admin-period" }, field("admin.sla.opens", start), field("admin.sla.closes", end), remove);
  remove.addEventListener("click", () => row.remove());
  return row;
}

function dayBlock(day) {
  const periods = h("div", { class: "admin-periods", dataset: { day } }, hours.week[day].map((p) => periodRow(day, p)));
  const add = button("admin.sla.add_period");
  add.addEventListener("click", () => periods.append(periodRow(day, { start: "08:00", end: "17:00" })));
  return h("fieldset", { class: "admin-day", dataset: { day } },
    h("legend", {}, t(`admin.weekday.${day}`)), periods,
    h("p", { class: "muted small admin-closed" }, t("admin.sla.closed_hint")), add);
}

function holidayRow(holiday) {
  const date = h("input", { type: "date", value: holiday.date, required: true, class: "holiday-date" });
  const name = h("input", { type: "text", value: holiday.name || "", maxlength: 200, class: "holiday-name" });
  const remove = button("admin.remove", { class: "btn btn-ghost" });
  const row = h("li", { class: "admin-holiday" }, field("admin.sla.holiday_date", date), field("admin.sla.holiday_name", name), remove);
  remove.addEventListener("click", () => row.remove());
  return row;
}

function hoursForm() {
  const holidays = h("ul", { class: "admin-holidays", id: "holiday-list" }, hours.holidays.map(holidayRow));
  const addHoliday = button("admin.sla.add_holiday");
  addHoliday.addEventListener("click", () => holidays.append(holidayRow({ date: "", name: "" })));
  const form = h("form", { class: "card admin-form", id: "hours-form" },
    h("h2", {}, t("admin.sla.hours_title")),
    h("p", { class: "muted" }, t("admin.sla.timezone", { timezone: hours.timezone })),
    h("div", { class: "admin-days" }, WEEKDAYS.map(dayBlock)),
    h("h2", {}, t("admin.sla.holidays_title")), holidays, addHoliday,
    h("div", { class: "admin-actions" }, h("button", { type: "submit", class: "btn btn-primary", id: "hours-save" }, t("admin.sla.save_hours"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const week = Object.fromEntries(WEEKDAYS.map((day) => [day,
      [...form.querySelectorAll(`.admin-periods[data-day="${day}"] .admin-period`)].map((row) => {
        const end = row.querySelector(".period-end").value;
        return { start: row.querySelector(".period-start").value, end: end === "23:59" ? "24:00" : end };
      })]));
    const chosen = [...form.querySelectorAll(".admin-holiday")].map((row) => ({
      date: row.querySelector(".holiday-date").value, name: row.querySelector(".holiday-name").value.trim() }));
    try {
      await api("/api/business-hours", { method: "PUT", body: { week, holidays: chosen } });
      await load();
      flash(t("admin.sla.hours_saved"));
    } catch (error) {
      failed(error, KNOWN);
    }
  });
  return form;
}

function render() {
  if (!hours) return;
  fill(body,
    h("section", { class: "admin-list-section" }, h("h2", {}, t("admin.sla.policies_title")),
      h("p", { class: "muted small" }, t("admin.sla.policies_text")),
      h("ul", { class: "admin-list", id: "policy-list" }, PRIORITIES.map(policyCard))),
    hoursForm());
}

async function load() {
  const [list, schedule] = await Promise.all([api("/api/sla-policies"), api("/api/business-hours")]);
  policies = Object.fromEntries(list.data.map((p) => [p.priority, p]));
  hours = schedule;
  render();
}

onLanguageChange(render);
load().catch((error) => failed(error));
