// Entities on the training page: marking spans of a reviewed message as entities (shown highlighted
// in the message, removable), and the entity part of the model comparison (precision/recall/F1 of
// both models, per entity, and the new model's errors per entity: expected vs predicted spans).
// Offsets are Unicode code points, as the server (Python) counts them.
import { fill, h } from "/inbox/static/dom.js";

export const ENTITY_STRINGS = {
  vi: {
    entity_role_placeholder: "vai trò (không bắt buộc)", entity_crosses: "Đoạn này chồng lên một thực thể đã đánh dấu.",
    entity_remove: "Bỏ đánh dấu {entity}", entity_scores: "Thực thể trên tập kiểm tra giữ riêng ({n} câu có thực thể)",
    entity_precision: "Độ chính xác (precision)", entity_recall: "Độ phủ (recall)", entity_f1: "F1",
    entity_per_entity: "Theo từng thực thể", entity_name: "Thực thể", entity_support: "Số lượng",
    entity_active_f1: "F1 đang chạy", entity_candidate_f1: "F1 mô hình mới", entity_candidate_p: "Precision mới",
    entity_candidate_r: "Recall mới", entity_errors: "Lỗi thực thể của mô hình mới",
    entity_error_count: "{entity}: {count} câu", entity_expected: "Cần nhận:", entity_predicted: "Mô hình nhận:",
    entity_nothing: "(không có)", entity_no_errors: "Mô hình mới nhận đúng mọi thực thể.",
  },
  en: {
    entity_role_placeholder: "role (optional)", entity_crosses: "This span crosses an entity already marked.",
    entity_remove: "Remove the {entity} mark", entity_scores: "Entities on the held-out set ({n} examples with entities)",
    entity_precision: "Precision", entity_recall: "Recall", entity_f1: "F1",
    entity_per_entity: "Per entity", entity_name: "Entity", entity_support: "Count",
    entity_active_f1: "Active F1", entity_candidate_f1: "New model F1", entity_candidate_p: "New precision",
    entity_candidate_r: "New recall", entity_errors: "The new model's entity errors",
    entity_error_count: "{entity}: {count} examples", entity_expected: "Expected:", entity_predicted: "Predicted:",
    entity_nothing: "(none)", entity_no_errors: "The new model finds every entity right.",
  },
};

const codePoints = (text) => [...text];

/** The selection inside `container` as code-point offsets of its text, or null when there is none. */
function selectionOffsets(container) {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  if (!container.contains(range.startContainer) || !container.contains(range.endContainer)) return null;
  const before = document.createRange();
  before.selectNodeContents(container);
  before.setEnd(range.startContainer, range.startOffset);
  const start = codePoints(before.toString()).length;
  return { start, end: start + codePoints(range.toString()).length };
}

/**
 * The annotator of one reviewed message: `sample` shows the text with marked spans highlighted,
 * `panel` holds the entity form and the removable marks; `startMark()` turns the current selection
 * into a pending mark; `marks()` is what the label request sends.
 */
export function annotator(text, { t, flash }) {
  const chars = codePoints(text);
  const marks = [];
  let pending = null;
  const sample = h("p", { class: "sample", tabindex: "0" });
  const list = h("div", { class: "marks" });
  const entityInput = h("input", { class: "entity-name", list: "entity-names", placeholder: t("entity_placeholder"),
    "aria-label": t("entity_placeholder"), required: true, maxlength: "64", pattern: "[A-Za-z_][A-Za-z0-9_.\\-]*" });
  const roleInput = h("input", { class: "entity-role", placeholder: t("entity_role_placeholder"),
    "aria-label": t("entity_role_placeholder"), maxlength: "64" });
  const form = h("form", { class: "mark-form inline", hidden: true },
    entityInput, roleInput, h("button", { type: "submit" }, t("mark_ok")));

  function render() {
    const parts = [];
    let at = 0;
    for (const mark of marks) {
      parts.push(chars.slice(at, mark.start).join(""));
      parts.push(h("mark", { class: "entity", dataset: { entity: mark.entity, start: mark.start, end: mark.end },
        title: mark.role ? `${mark.entity} (${mark.role})` : mark.entity }, chars.slice(mark.start, mark.end).join("")));
      at = mark.end;
    }
    parts.push(chars.slice(at).join(""));
    fill(sample, ...parts);
    fill(list, ...marks.map((mark, index) => h("span", { class: "chip mark", dataset: { entity: mark.entity } },
      `${chars.slice(mark.start, mark.end).join("")} → ${mark.entity}${mark.role ? ` (${mark.role})` : ""} `,
      h("button", { type: "button", class: "link remove-mark", "aria-label": t("entity_remove", { entity: mark.entity }),
        onclick: () => { marks.splice(index, 1); render(); } }, "×"))));
  }

  function startMark() {
    const offsets = selectionOffsets(sample);
    if (!offsets) { flash(t("mark_help")); return; }
    let { start, end } = offsets;
    while (start < end && /\s/.test(chars[start])) start += 1;  // the server trims these too
    while (end > start && /\s/.test(chars[end - 1])) end -= 1;
    if (start >= end) { flash(t("mark_help")); return; }
    if (marks.some((mark) => start < mark.end && mark.start < end)) { flash(t("entity_crosses"), "error"); return; }
    pending = { start, end };
    form.hidden = false;
    entityInput.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!pending) return;
    const role = roleInput.value.trim();
    marks.push({ entity: entityInput.value.trim(), start: pending.start, end: pending.end, ...(role ? { role } : {}) });
    marks.sort((a, b) => a.start - b.start);
    pending = null;
    form.hidden = true;
    entityInput.value = "";
    roleInput.value = "";
    render();
  });
  // Keyboard: with text selected in the message, Enter (or "e") starts a mark.
  sample.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === "e") { event.preventDefault(); startMark(); }
  });
  render();
  return { sample, panel: [list, form], startMark, marks: () => marks.map((mark) => ({ ...mark })) };
}

function scoreRow(key, name, scores) {
  const before = scores.active ? scores.active[key] : null;
  const after = scores.candidate ? scores.candidate[key] : null;
  const delta = scores.delta ? scores.delta[key] : null;
  return { key, name, before, after, delta };
}

/** The entity part of a comparison (null when the held-out set has no entity to score). */
export function entitySection(entities, { t, percent, signed }) {
  if (!entities) return null;
  const rows = [["precision", t("entity_precision")], ["recall", t("entity_recall")], ["f1", t("entity_f1")]]
    .map(([key, name]) => scoreRow(key, name, entities));
  return h("section", { class: "entity-comparison", id: "entity-comparison" },
    h("table", { class: "scores entity-scores", dataset: { set: "entities" } },
      h("caption", {}, t("entity_scores", { n: entities.n })),
      h("thead", {}, h("tr", {}, h("th", {}, t("metric")), h("th", { class: "num" }, t("active")),
        h("th", { class: "num" }, t("candidate")), h("th", { class: "num" }, t("change")))),
      h("tbody", {}, rows.map((row) => h("tr", { dataset: { metric: `entity_${row.key}` } }, h("td", {}, row.name),
        h("td", { class: "num active-score" }, percent(row.before)),
        h("td", { class: "num candidate-score" }, percent(row.after)),
        h("td", { class: `num ${row.delta > 0 ? "up" : row.delta < 0 ? "down" : ""}` }, signed(row.delta)))))),
    h("h3", {}, t("entity_per_entity")),
    h("table", { class: "per-entity" },
      h("thead", {}, h("tr", {}, h("th", {}, t("entity_name")), h("th", { class: "num" }, t("entity_support")),
        h("th", { class: "num" }, t("entity_active_f1")), h("th", { class: "num" }, t("entity_candidate_f1")),
        h("th", { class: "num" }, t("entity_candidate_p")), h("th", { class: "num" }, t("entity_candidate_r")))),
      h("tbody", {}, entities.per_entity.map((row) => h("tr", { dataset: { entity: row.entity } },
        h("td", {}, row.entity), h("td", { class: "num" }, String(row.support)),
        h("td", { class: "num active-f1" }, percent(row.active ? row.active.f1 : null)),
        h("td", { class: "num candidate-f1" }, percent(row.candidate.f1)),
        h("td", { class: "num" }, percent(row.candidate.precision)),
        h("td", { class: "num" }, percent(row.candidate.recall)))))),
    h("h3", {}, t("entity_errors")),
    entities.errors.length ? h("div", { class: "entity-errors" }, entities.errors.map((group) =>
      h("details", { dataset: { entity: group.entity } },
        h("summary", {}, t("entity_error_count", { entity: group.entity, count: group.count })),
        h("ul", {}, group.examples.map((example) => h("li", {},
          h("span", { class: "flip-text" }, example.text), " ",
          h("span", { class: "expected" }, t("entity_expected"), " ", spans(example.expected, t)), " ",
          h("span", { class: "predicted" }, t("entity_predicted"), " ", spans(example.predicted, t))))))))
      : h("p", { class: "muted" }, t("entity_no_errors")));
}

function spans(list, t) {
  if (!list.length) return h("em", { class: "muted" }, t("entity_nothing"));
  return list.map((span) => h("code", { dataset: { start: span.start, end: span.end } }, `${span.text} (${span.entity})`));
}
