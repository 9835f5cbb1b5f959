/*
 * Keyboard shortcuts on a tip (listed on the page): a status or priority key sets
 * the triage form's field and submits it, so the change carries the form's version
 * and is refused like any other if someone changed the tip meanwhile.
 */
(function () {
  "use strict";

  var form = document.getElementById("triage-form");
  var STATUS_KEYS = { r: "reviewing", a: "actionable", n: "no_value", c: "closed" };
  var PRIORITY_KEYS = { "1": "low", "2": "normal", "3": "high", "4": "urgent" };

  function setAndSubmit(id, value) {
    var field = document.getElementById(id);
    if (!form || !field) return;
    field.value = value;
    form.submit();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                   target.tagName === "SELECT" || target.isContentEditable)) return;
    if (STATUS_KEYS[event.key]) {
      setAndSubmit("triage-status", STATUS_KEYS[event.key]);
    } else if (PRIORITY_KEYS[event.key]) {
      setAndSubmit("triage-priority", PRIORITY_KEYS[event.key]);
    } else if (event.key === "m") {
      var body = document.getElementById("body");
      if (body) { body.focus(); event.preventDefault(); }
    } else if (event.key === "u") {
      var back = document.querySelector(".crumbs a");
      if (back) window.location.href = back.href;
    }
  });
})();
