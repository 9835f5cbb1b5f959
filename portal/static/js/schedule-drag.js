/*
 * Drag a backlog appeal onto an empty slot of the calendar to fill it: the drop opens
 * that slot's fill form with the appeal ticked, where the channels are chosen and the
 * post is scheduled (preflight runs there, as for a pick). A drag never schedules on
 * its own: a slip of the mouse posts nothing. Without JavaScript, and by keyboard, a
 * slot's "Fill this slot" link opens the same form.
 */
(function () {
  "use strict";

  var TYPE = "application/x-tattletale-appeal";
  var items = document.querySelectorAll(".schedule-backlog [data-appeal]");
  var slots = document.querySelectorAll("[data-drop-url]");
  if (!items.length || !slots.length || !("draggable" in document.createElement("li"))) return;

  var hint = document.querySelector("[data-drag-hint]");
  if (hint) hint.hidden = false;
  var dragging = null;

  Array.prototype.forEach.call(items, function (item) {
    item.setAttribute("draggable", "true");
    item.classList.add("is-draggable");
    item.addEventListener("dragstart", function (event) {
      dragging = item.getAttribute("data-appeal");
      event.dataTransfer.effectAllowed = "copy";
      event.dataTransfer.setData(TYPE, dragging);
      event.dataTransfer.setData("text/plain", item.getAttribute("data-appeal-label") || dragging);
      item.classList.add("is-dragging");
      Array.prototype.forEach.call(slots, function (slot) { slot.classList.add("is-drop-ready"); });
    });
    item.addEventListener("dragend", function () {
      dragging = null;
      item.classList.remove("is-dragging");
      Array.prototype.forEach.call(slots, function (slot) {
        slot.classList.remove("is-drop-ready", "is-drop-target");
      });
    });
  });

  function carries(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, TYPE) !== -1;
  }

  Array.prototype.forEach.call(slots, function (slot) {
    slot.addEventListener("dragover", function (event) {
      if (!carries(event)) return; // text or files dragged from elsewhere: not a drop
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      slot.classList.add("is-drop-target");
    });
    slot.addEventListener("dragleave", function (event) {
      if (!slot.contains(event.relatedTarget)) slot.classList.remove("is-drop-target");
    });
    slot.addEventListener("drop", function (event) {
      if (!carries(event)) return;
      event.preventDefault();
      var appeal = event.dataTransfer.getData(TYPE) || dragging;
      if (!appeal) return;
      var url = new URL(slot.getAttribute("data-drop-url"), window.location.href);
      url.searchParams.append("appeal", appeal);
      window.location.assign(url.toString());
    });
  });
})();
