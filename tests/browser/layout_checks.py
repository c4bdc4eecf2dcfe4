"""Layout and accessibility checks for any page open in Playwright: call them on every page you add.

    from tests.browser.layout_checks import assert_phone_ready, assert_desktop_ready, assert_ready_at_both_sizes
    page.set_viewport_size({"width": 390, "height": 844})
    ...
    assert_phone_ready(page)      # no overlap, no sideways scroll, 44 px targets, no serious axe finding

Each finder returns a list of readable findings (empty when the page is fine), so a test can also
assert on one kind alone. What counts:

- overlap: two visible interactive elements (buttons, links, inputs, textareas, selects,
  ``[role=button]``, ``[tabindex]``) whose boxes, as clipped by their scrolling ancestors, intersect
  by more than 1 px in both directions, where neither box contains the other and neither element is
  inside the other in the DOM. A launcher over a Send button is one; a button inside a link is not.
- sideways scroll: the document is wider than the window, or a visible element reaches past its
  left or right edge (reported once, at the outermost element that does).
- small targets (phone only): a visible interactive element under 44 × 44 px, links inside running
  text excepted (WCAG 2.5.5 exempts them).
- axe-core: the violations of impact serious or critical, from the ``axe-core`` npm package that
  scripts/test-services.sh installs under tests/browser/node_modules (pinned by package-lock.json).
"""

from __future__ import annotations

import functools
from pathlib import Path

AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}
MIN_TARGET_PX = 44

# Shared by the finders: which elements count as interactive, whether one is visible, its box as
# clipped by ancestors that scroll or hide overflow, and a short selector to name it in a finding.
_COMMON_JS = r"""
const INTERACTIVE = 'a[href], button, input:not([type=hidden]), textarea, select, [role=button], [tabindex]';
// Every element of the document and of the open shadow roots in it (the web chat widget lives in one).
function allElements(root = document) {
  const found = [];
  for (const node of root.querySelectorAll('*')) {
    found.push(node);
    if (node.shadowRoot) found.push(...allElements(node.shadowRoot));
  }
  return found;
}
// The parent, crossing out of a shadow root to its host.
function parentOf(node) {
  return node.parentElement || (node.parentNode && node.parentNode.host) || null;
}
function visible(node) {
  if (!node.getClientRects().length) return false;
  const style = getComputedStyle(node);
  if (style.visibility === 'hidden' || Number(style.opacity) === 0) return false;
  for (let up = node; up; up = parentOf(up)) {
    if (Number(getComputedStyle(up).opacity) === 0) return false;
  }
  const box = node.getBoundingClientRect();
  return box.width > 2 && box.height > 2;  // a 1 px "visually hidden" control is not a target
}
function clippedBox(node) {
  const box = node.getBoundingClientRect();
  let [left, top, right, bottom] = [box.left, box.top, box.right, box.bottom];
  for (let up = parentOf(node); up && up !== document.body; up = parentOf(up)) {
    const style = getComputedStyle(up);
    if (style.overflowX !== 'visible' || style.overflowY !== 'visible') {
      const clip = up.getBoundingClientRect();
      if (style.overflowX !== 'visible') { left = Math.max(left, clip.left); right = Math.min(right, clip.right); }
      if (style.overflowY !== 'visible') { top = Math.max(top, clip.top); bottom = Math.min(bottom, clip.bottom); }
    }
    if (style.position === 'fixed') break;
  }
  return { left, top, right, bottom, width: right - left, height: bottom - top };
}
function describe(node) {
  let name = node.tagName.toLowerCase();
  if (node.id) name += '#' + node.id;
  else if (node.classList.length) name += '.' + [...node.classList].slice(0, 3).join('.');
  const holder = !node.id && node.parentElement && node.parentElement.closest('[id]');
  if (holder) name = `${holder.tagName.toLowerCase()}#${holder.id} ${name}`;  // where it is, when it has no id
  const text = node.getAttribute('aria-label') || node.textContent || node.getAttribute('placeholder') || '';
  const label = text.trim().replace(/\s+/g, ' ');
  return label ? `${name} "${label.slice(0, 30)}"` : name;
}
function controls() {
  return allElements().filter((node) => node.matches(INTERACTIVE) && visible(node))
    .map((node) => ({ node, box: clippedBox(node) }))
    .filter(({ box }) => box.width > 2 && box.height > 2);
}
"""

_OVERLAPS_JS = _COMMON_JS + r"""
() => {
  const found = [];
  const items = controls();
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const a = items[i], b = items[j];
      if (a.node.contains(b.node) || b.node.contains(a.node)) continue;
      const dx = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
      const dy = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
      if (dx <= 1 || dy <= 1) continue;
      if (inside(a.box, b.box) || inside(b.box, a.box)) continue;
      found.push(`${describe(a.node)} overlaps ${describe(b.node)} by ${Math.round(dx)}x${Math.round(dy)} px`);
    }
  }
  return found;
}
"""

_OVERFLOW_JS = _COMMON_JS + r"""
() => {
  const found = [];
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth > width) found.push(`the page scrolls sideways: ${root.scrollWidth} px wide in a ${width} px window`);
  const wide = [];
  for (const node of allElements(document.body)) {
    if (!visible(node)) continue;
    const box = clippedBox(node);
    if (box.width <= 0 || box.height <= 0) continue;
    if (box.right > width + 1 || box.left < -1) {
      if (wide.some((outer) => outer.contains(node))) continue;
      wide.push(node);
      found.push(`${describe(node)} reaches ${Math.round(box.left)}..${Math.round(box.right)} px in a ${width} px window`);
    }
  }
  return found;
}
"""

_SMALL_TARGETS_JS = _COMMON_JS + r"""
(minimum) => {
  const found = [];
  for (const { node } of controls()) {
    if (node.matches('a') && node.closest('p')) continue;  // a link inside running text
    const box = node.getBoundingClientRect();
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      found.push(`${describe(node)} is ${Math.round(box.width)}x${Math.round(box.height)} px`);
    }
  }
  return found;
}
"""


def overlapping_controls(page) -> list[str]:
    """Pairs of visible interactive elements that cover each other, as readable sentences."""
    return page.evaluate(_OVERLAPS_JS)


def horizontal_overflow(page) -> list[str]:
    """Why the page scrolls sideways or what sticks out of the window; empty when nothing does."""
    return page.evaluate(_OVERFLOW_JS)


def small_targets(page, minimum: int = MIN_TARGET_PX) -> list[str]:
    """Visible interactive elements smaller than a thumb (``minimum`` px either way)."""
    return page.evaluate(_SMALL_TARGETS_JS, minimum)


@functools.cache
def _axe_source() -> str:
    return AXE_SCRIPT.read_text(encoding="utf-8")


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line per element.

    axe.min.js is injected from tests/browser/node_modules (installed by scripts/test-services.sh); the
    page's own frames only (axe does not reach into the widget's shadow root unless it is open, which it is).
    """
    if not AXE_SCRIPT.exists():
        raise AssertionError(f"{AXE_SCRIPT} is missing: run scripts/test-services.sh "
                             "(it runs npm ci in tests/browser)")
    if not page.evaluate("typeof window.axe === 'object'"):
        # Evaluated rather than added as a <script> tag (page.add_script_tag): our pages' Content Security
        # Policy (script-src 'self') refuses inline scripts, and it must stay on while they are checked.
        page.evaluate(_axe_source() + "\n;0")
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    found = []
    for violation in result:
        if violation["impact"] not in impacts:
            continue
        for node in violation["nodes"]:
            # inside a shadow root a target is a list: the host's selector, then the element's within it
            where = " >>> ".join(part if isinstance(part, str) else " ".join(part) for part in node["target"])
            found.append(f"{violation['impact']} {violation['id']} ({violation['help']}) at {where}")
    return found


def _assert_none(kind: str, findings: list[str]) -> None:
    assert not findings, f"{kind} on the page:\n  " + "\n  ".join(findings)


def assert_desktop_ready(page) -> None:
    """No overlapping controls, no sideways scroll and no serious or critical axe-core violation."""
    _assert_none("overlapping controls", overlapping_controls(page))
    _assert_none("sideways overflow", horizontal_overflow(page))
    _assert_none("accessibility violations", axe_violations(page))


def assert_phone_ready(page) -> None:
    """All of ``assert_desktop_ready``, and every control at least 44 × 44 px for a thumb."""
    assert_desktop_ready(page)
    _assert_none("targets too small for a thumb", small_targets(page))


def assert_ready_at_both_sizes(page) -> None:
    """The page as it is now, resized to a phone (390×844) and then a desktop (1400×900), passes both checks.

    For a page whose layout follows the window alone; a page that needs steps to reach a state (a tap,
    a login) is better checked with assert_phone_ready / assert_desktop_ready at each size.
    """
    page.set_viewport_size(PHONE)
    assert_phone_ready(page)
    page.set_viewport_size(DESKTOP)
    assert_desktop_ready(page)
