// The account's security pages: copy a secret shown once to the clipboard.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
  if (!button) {
    return;
  }
  const source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) {
    return;
  }
  const items = source.querySelectorAll("li");
  const text = items.length
    ? Array.from(items, (item) => item.textContent.trim()).join("\n")
    : source.textContent.trim();
  navigator.clipboard.writeText(text).then(() => {
    button.textContent = button.getAttribute("data-copied") || button.textContent;
  }, () => {});
});
