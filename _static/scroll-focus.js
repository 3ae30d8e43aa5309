// A code block, table or diagram that scrolls sideways is a tab stop, so keyboard
// users can scroll it too (WCAG 2.1.1). Only while it actually scrolls: at desktop
// width most blocks fit and stay out of the tab order.
(function () {
  "use strict";
  var SELECTOR = "div.highlight pre, .table-wrapper, figure.diagram, article table";

  function update() {
    document.querySelectorAll(SELECTOR).forEach(function (element) {
      if (element.scrollWidth > element.clientWidth + 1) {
        element.setAttribute("tabindex", "0");
        // A wrapper gets a name; a pre or table keeps its own role.
        if (element.tagName === "DIV" && !element.hasAttribute("aria-label")) {
          element.setAttribute("role", "region");
          element.setAttribute("aria-label", "Scrollable content");
        }
      } else if (element.getAttribute("tabindex") === "0") {
        element.removeAttribute("tabindex");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", update);
  window.addEventListener("load", update);
  window.addEventListener("resize", update);
})();
