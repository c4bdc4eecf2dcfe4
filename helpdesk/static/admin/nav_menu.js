// The shared navigation on a phone: the links and tools fold behind a menu button that opens them as a
// full-width list (admin.css hides the panel below 768 px while the header lacks "open"). The button
// is shown here, by script, so a page whose script did not run keeps its links in sight.

const header = document.getElementById("app-nav");
const button = document.getElementById("app-nav-menu");
const panel = document.getElementById("app-nav-panel");

function setOpen(open) {
  header.classList.toggle("open", open);
  button.setAttribute("aria-expanded", String(open));
}

if (header && button && panel) {
  header.classList.add("app-nav-foldable");
  button.hidden = false;
  button.addEventListener("click", () => setOpen(!header.classList.contains("open")));
  // Escape closes the open menu and gives the focus back to its button
  header.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && header.classList.contains("open")) {
      setOpen(false);
      button.focus();
    }
  });
  // a tap outside the navigation closes it
  document.addEventListener("click", (event) => {
    if (header.classList.contains("open") && !header.contains(event.target)) setOpen(false);
  });
}
