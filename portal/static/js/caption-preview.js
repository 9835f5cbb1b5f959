/*
 * Live caption previews: as a caption template (the template editor) or a scheduled
 * post's caption for one channel (the post page) is typed, the server writes it out,
 * cuts and counts it as the network will (the same code as the Preview button, the
 * save and preflight) and this places its words beside the form. Nothing is counted
 * here: a count done twice, in two languages, would one day disagree with what is
 * sent. Without JavaScript, or when the server does not answer, the Preview button
 * (or saving) says the same.
 */
(function () {
  "use strict";

  var DELAY_MS = 250;

  function live(form) {
    var target = form.getAttribute("data-preview-target");
    var panel = target ? document.getElementById(target)
                       : document.querySelector("[data-preview-panel]");
    if (!panel) return;
    var url = form.getAttribute("data-caption-preview");
    var count = panel.querySelector("[data-count]");
    var warning = panel.querySelector("[data-warning]");
    var problems = panel.querySelector("[data-problems]");
    var caption = panel.querySelector("[data-caption]");
    var failed = panel.querySelector("[data-live-failed]");
    var note = panel.querySelector("[data-live-note]");
    var timer = null;
    var asked = 0;

    if (note) note.hidden = false;

    function showProblems(found) {
      if (!problems) return;
      while (problems.firstChild) problems.removeChild(problems.firstChild);
      Object.keys(found || {}).forEach(function (part) {
        (found[part] || []).forEach(function (message) {
          var item = document.createElement("li");
          item.textContent = message;
          problems.appendChild(item);
        });
      });
      problems.hidden = problems.childNodes.length === 0;
    }

    function show(answer) {
      if (failed) failed.hidden = true;
      showProblems(answer.problems);
      if (typeof answer.text !== "string") return; // the form itself was refused
      if (count) count.textContent = answer.count;
      if (caption) caption.textContent = answer.text;
      if (warning) {
        warning.textContent = answer.warning;
        warning.hidden = !answer.warning;
      }
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
          var type = response.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") !== 0) {
            throw new Error("preview answered " + response.status);
          }
          return response.json();
        })
        .then(function (answer) {
          if (mine === asked) show(answer); // an older answer never overwrites a newer
        })
        .catch(function () {
          if (mine === asked && failed) failed.hidden = false;
        })
        .then(function () {
          if (mine === asked) panel.removeAttribute("aria-busy");
        });
    }

    form.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, DELAY_MS);
    });
  }

  if (!window.fetch || !window.FormData) return;
  Array.prototype.forEach.call(document.querySelectorAll("form[data-caption-preview]"), live);
})();
