// Small enhancements of server-rendered pages; every page works without them.
"use strict";

document.documentElement.classList.add("js");

document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit")) {
    field.form.requestSubmit();
  }
});

// Forms whose action cannot be undone ask first: data-confirm holds the question.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
