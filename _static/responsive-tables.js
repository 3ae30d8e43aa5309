// Tables reflow on narrow screens. A table that does not fit its column first gets
// closer columns (table-compact); if it still does not fit, or its prose is squeezed
// into narrow columns, it is shown as one block per row, each cell labelled with its
// column's header (table-stacked, guide.css). Roles keep it a table for screen
// readers. Re-checked whenever the page's width changes.
(() => {
  const SELECTOR = "article table.docutils:not(.highlighttable):not(.rule-index)";
  //: Narrowest readable column for prose, in px.
  const MIN_PROSE_COLUMN = 96;
  const ROLES = [
    ["tbody", "rowgroup"],
    ["tbody > tr", "row"],
    ["td", "cell"],
  ];

  function label(table) {
    const heads = [...table.querySelectorAll("thead tr:last-child th")].map((th) =>
      th.textContent.trim(),
    );
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, index) => {
        if (heads[index]) cell.dataset.label = heads[index];
      });
    }
    table.setAttribute("role", "table");
    for (const [selector, role] of ROLES) {
      table.querySelectorAll(selector).forEach((e) => e.setAttribute("role", role));
    }
  }

  function overflows(table) {
    const box = table.parentElement;
    return (
      table.offsetWidth > box.clientWidth + 1 ||
      box.scrollWidth > box.clientWidth + 1 ||
      table.scrollWidth > table.clientWidth + 1
    );
  }

  function tooNarrow(table) {
    if (overflows(table)) return true;
    const columns = table.querySelectorAll("thead tr:last-child th").length || 1;
    const prose = [...table.querySelectorAll("td")].some(
      (cell) => cell.textContent.trim().length > 40,
    );
    return prose && table.offsetWidth / columns < MIN_PROSE_COLUMN;
  }

  function fit() {
    for (const table of document.querySelectorAll(SELECTOR)) {
      if (!table.dataset.labelled) {
        label(table);
        table.dataset.labelled = "true";
      }
      table.classList.remove("table-stacked", "table-compact");
      if (!tooNarrow(table)) continue;
      table.classList.add("table-compact");
      if (tooNarrow(table)) {
        table.classList.remove("table-compact");
        table.classList.add("table-stacked");
      }
    }
  }

  let width = 0;
  function refit() {
    if (document.documentElement.clientWidth === width) return;
    width = document.documentElement.clientWidth;
    fit();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refit);
  } else {
    refit();
  }
  window.addEventListener("resize", refit);
})();
