// Phones and keyboards: the theme's menu and contents toggles are <label>s for
// hidden checkboxes, with no name and no tab stop. Here they become named buttons
// (Enter or Space opens the drawer and moves the focus into it, Escape closes it and
// returns the focus to its button), and a search box is shown on every page where the
// sidebar's is hidden (below 67em): a copy of the sidebar's form.
(() => {
  const DRAWERS = {
    __navigation: { drawer: ".sidebar-drawer", name: "Site navigation and search" },
    __toc: { drawer: ".toc-drawer", name: "Contents of this page" },
  };

  function setUpToggle(label, checkbox, drawer, name) {
    label.setAttribute("role", "button");
    label.setAttribute("tabindex", "0");
    label.setAttribute("aria-label", name);
    label.setAttribute("aria-controls", drawer.id);
    label.setAttribute("aria-expanded", String(checkbox.checked));
    label.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      checkbox.checked = !checkbox.checked;
      checkbox.dispatchEvent(new Event("change"));
      if (checkbox.checked) {
        // The drawer is visible once the checkbox is checked (guide.css): focus
        // its first control a reader can see (the theme hides some of its links).
        requestAnimationFrame(() => {
          const first = [...drawer.querySelectorAll("input.sidebar-search, a[href]")]
            .find((element) => element.getClientRects().length > 0);
          if (first) first.focus();
        });
      }
    });
  }

  function setUpDrawers() {
    for (const [id, { drawer: selector, name }] of Object.entries(DRAWERS)) {
      const checkbox = document.getElementById(id);
      const drawer = document.querySelector(selector);
      if (!checkbox || !drawer) continue;
      drawer.id ||= `${id.slice(2)}-drawer`;
      const toggles = document.querySelectorAll(
        `label[for="${id}"]:not(.overlay)`,
      );
      toggles.forEach((label) => setUpToggle(label, checkbox, drawer, name));
      checkbox.addEventListener("change", () => {
        toggles.forEach((label) =>
          label.setAttribute("aria-expanded", String(checkbox.checked)),
        );
      });
      drawer.addEventListener("keydown", (event) => {
        if (event.key !== "Escape" || !checkbox.checked) return;
        checkbox.checked = false;
        checkbox.dispatchEvent(new Event("change"));
        const visible = [...toggles].find((label) => label.offsetParent !== null);
        if (visible) visible.focus();
      });
    }
  }

  function addPhoneSearch() {
    const form = document.querySelector("form.sidebar-search-container");
    const header = document.querySelector("header.mobile-header");
    if (!form || !header || document.querySelector(".phone-search")) return;
    const copy = form.cloneNode(true);
    copy.className = "phone-search";
    const input = copy.querySelector("input[name=q]");
    input.className = "phone-search-input";
    input.type = "search";
    input.setAttribute("aria-label", "Search the guide");
    input.placeholder = "Search the guide";
    const query = new URLSearchParams(location.search).get("q");
    if (query && copy.getAttribute("action").endsWith("#")) input.value = query;
    if (query && document.getElementById("search-results")) input.value = query;
    header.after(copy);
  }

  function start() {
    setUpDrawers();
    addPhoneSearch();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
