// "Copy review link" on rule pages: puts a Markdown link to the rule on the clipboard,
// e.g. [IO101 eager-load-response-data](https://docs.example/guides/rules/io101.html).
// The URL is always the page's canonical one (conf.py sets html_baseurl from the one
// published address), whatever host the reader browses; the address bar is only a
// fallback for a build without it.
(function () {
  "use strict";

  function pageUrl() {
    var canonical = document.querySelector('link[rel="canonical"]');
    if (canonical && canonical.href) return canonical.href;
    var url = new URL(window.location.href);
    url.hash = "";
    url.search = "";
    return url.href;
  }

  function fallbackCopy(text) {
    // Clipboard API needs a secure context (https or localhost); file:// has none.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  function flash(button, message) {
    var original = button.dataset.original || button.textContent;
    button.dataset.original = original;
    button.textContent = message;
    window.setTimeout(function () {
      button.textContent = original;
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button.rule-copy-link").forEach(function (button) {
      button.addEventListener("click", function () {
        var link = "[" + button.dataset.label + "](" + pageUrl() + ")";
        copy(link).then(
          function () {
            flash(button, "Copied");
          },
          function () {
            // Last resort: show the link so it can be copied by hand.
            window.prompt("Copy this review link:", link);
          }
        );
      });
    });
  });
})();
