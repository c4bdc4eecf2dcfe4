// The shared navigation's own behaviour, for any page that includes admin/nav.html: logging out, and
// the phone's menu (nav_menu.js). (The language switch belongs to each page's script, which re-renders
// its own words.)
import { api } from "/inbox/static/api.js";
import "/admin/static/nav_menu.js";

const logout = document.getElementById("nav-logout");
if (logout) {
  logout.addEventListener("click", async () => {
    try {
      await api("/api/auth/logout", { method: "POST" });
    } finally {
      location.assign("/inbox/login");
    }
  });
}
