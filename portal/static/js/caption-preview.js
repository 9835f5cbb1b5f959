/*
 * The caption editor's live preview: as the template is typed, the server writes it
 * out, cuts and counts it as the network will (the same code as the Preview button
 * and as preflight) and this places its words in the preview. Nothing is counted
 * here: a count done twice, in two languages, would one day disagree with what is
 * sent. Without JavaScript, or when the server does not answer, the Preview button
 * does the same.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-caption-preview]");
  var panel = document.querySelector("[data-preview-panel]");
  if (!form || !panel || !window.fetch || !window.FormData) return;

  var url = form.getAttribute("data-caption-preview");
  var count = panel.querySelector("[data-count]");
  var warning = panel.querySelector("[data-warning]");
  var problems = panel.querySelector("[data-problems]");
  var caption = panel.querySelector("[data-caption]");
  var failed = panel.querySelector("[data-live-failed]");
  var note = panel.querySelector("[data-live-note]");
  var DELAY_MS = 250;
  var timer = null;
  var asked = 0;

  if (note) note.hidden = false;

  function showProblems(found) {
    while (problems.firstChild) problems.removeChild(problems.firstChild);
    var parts = Object.keys(found || {});
    parts.forEach(function (part) {
      (found[part] || []).forEach(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        problems.appendChild(item);
      });
    });
    problems.hidden = problems.childNodes.length === 0;
  }

  function show(answer) {
    failed.hidden = true;
    showProblems(answer.problems);
    if (typeof answer.text !== "string") return; // the form itself was refused
    count.textContent = answer.count;
    caption.textContent = answer.text;
    warning.textContent = answer.warning;
    warning.hidden = !answer.warning;
  }

  function refresh() {
    var mine = ++asked;
    panel.setAttribute("aria-busy", "true");
    fetch(url, {
      method: "POST",
      body: new FormData(form), // carries the form's CSRF token
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (!json) throw new Error("preview answered " + response.status);
        return response.json();
      })
      .then(function (answer) {
        if (mine === asked) show(answer); // an older answer never overwrites a newer
      })
      .catch(function () {
        if (mine === asked) failed.hidden = false;
      })
      .then(function () {
        if (mine === asked) panel.removeAttribute("aria-busy");
      });
  }

  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DELAY_MS);
  });
})();
