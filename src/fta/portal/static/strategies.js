// Strategies: the code editor (CodeMirror over the form's text area, which works without it),
// the line a refused save points at, a chosen .py file loaded into the editor, and code shown
// highlighted. Every page works without this script.
"use strict";

(function () {
  const CodeMirror = window.CodeMirror;
  const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

  function indentOrSpaces(editor) {
    if (editor.somethingSelected()) {
      editor.indentSelection("add");
    } else {
      editor.replaceSelection(" ".repeat(editor.getOption("indentUnit")), "end");
    }
  }

  // Marks the line a refused save names, until that line is edited.
  function markErrorLine(editor, lineNumber) {
    const index = Math.min(lineNumber, editor.lineCount()) - 1;
    const handle = editor.addLineClass(index, "wrap", "fta-error-line");
    editor.addLineClass(handle, "gutter", "fta-error-gutter");
    editor.setCursor({ line: index, ch: editor.getLine(index).length });
    editor.scrollIntoView({ line: index, ch: 0 }, 120);
    editor.focus();
    editor.on("change", function clear(_, change) {
      const at = editor.getLineNumber(handle);
      if (at === null || (change.from.line <= at && at <= change.to.line)) {
        editor.removeLineClass(handle, "wrap", "fta-error-line");
        editor.removeLineClass(handle, "gutter", "fta-error-gutter");
        editor.off("change", clear);
      }
    });
  }

  function enhanceEditor(area) {
    if (!CodeMirror) {
      return null;
    }
    const editor = CodeMirror.fromTextArea(area, {
      mode: { name: "python", version: 3 },
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      lineWrapping: false,
      extraKeys: { Tab: indentOrSpaces },
    });
    editor.getWrapperElement().classList.add("fta-editor");
    editor.refresh(); // measured again in the editor's own font
    const label = document.querySelector(`label[for="${area.id}"]`);
    if (label) {
      editor.getInputField().setAttribute("aria-label", label.textContent.trim());
      label.addEventListener("click", () => editor.focus());
    }
    const errorLine = parseInt(area.dataset.errorLine || "", 10);
    if (errorLine >= 1) {
      markErrorLine(editor, errorLine);
    }
    return editor;
  }

  // A chosen file goes into the editor (and out of the form): what is saved is what is seen.
  function loadChosenFiles(input, area, editor) {
    const status = document.getElementById("file-status");
    const nameField = document.getElementById("name");
    const say = (text, isError) => {
      if (status) {
        status.textContent = text;
        status.classList.toggle("error", Boolean(isError));
      }
    };
    input.addEventListener("change", () => {
      const chosen = input.files && input.files[0];
      if (!chosen) {
        return;
      }
      if (chosen.size > parseInt(input.dataset.maxBytes, 10)) {
        input.value = "";
        say(input.dataset.tooLarge, true);
        return;
      }
      chosen.text().then(
        (text) => {
          text = text.replace(/^\ufeff/, "");
          if (editor) {
            editor.setValue(text);
            editor.focus();
          } else {
            area.value = text;
          }
          input.value = "";
          const stem = chosen.name.replace(/\.py$/i, "");
          if (nameField && !nameField.value && NAME.test(stem)) {
            nameField.value = stem;
          }
          say(input.dataset.loaded.replace("%(file)s", chosen.name), false);
        },
        () => say(input.dataset.unreadable, true),
      );
    });
  }

  // Code shown for reading: highlighted, numbered, read-only.
  function highlight(pre) {
    const view = CodeMirror(
      (element) => pre.parentNode.replaceChild(element, pre),
      {
        value: pre.textContent,
        mode: { name: "python", version: 3 },
        lineNumbers: true,
        readOnly: true,
        viewportMargin: Infinity,
      },
    );
    view.getWrapperElement().classList.add("fta-editor", "fta-readonly");
    view.refresh();
  }

  function start() {
    const area = document.querySelector("textarea[data-editor]");
    const editor = area ? enhanceEditor(area) : null;
    const input = document.querySelector("input[type=file][data-max-bytes]");
    if (input && area) {
      loadChosenFiles(input, area, editor);
    }
    if (CodeMirror) {
      document.querySelectorAll("pre[data-highlight]").forEach(highlight);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
