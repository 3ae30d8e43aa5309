// Proof marks: one quiet button per cited claim ("proven on 4/4") that opens its
// detail (the test, and one line per configuration with its verdict in words) on
// click, tap, Enter or Space, and closes it on a second press or Escape, which
// returns the focus to the button. No hover needed: phones and keyboards see it all.
(() => {
  function toggle(button, open) {
    const detail = document.getElementById(button.getAttribute("aria-controls"));
    if (!detail) return;
    const opening = open ?? button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(opening));
    detail.hidden = !opening;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.proof-mark");
    if (button) toggle(button);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const proof = event.target.closest?.(".proof");
    const button = proof?.querySelector("button.proof-mark");
    if (!button || button.getAttribute("aria-expanded") !== "true") return;
    toggle(button, false);
    button.focus();
  });
})();
