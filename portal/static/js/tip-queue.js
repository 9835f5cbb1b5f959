/*
 * The tip queue: new tips appear at the top without reloading, and the keyboard
 * moves through the list (the shortcuts are listed on the page).
 *
 * Polls the queue's JSON (same filters) every 30 seconds while the tab is visible,
 * only on the first page of the newest-first order, where new tips belong. Every
 * value from the server is shown with textContent: tip text is never HTML.
 */
(function () {
  "use strict";

  var POLL_MS = 30000;
  var table = document.getElementById("tip-queue");
  var notice = document.getElementById("new-tips");
  var current = -1;

  function rows() {
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr")) : [];
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function badge(parent, text, kind) {
    var span = document.createElement("span");
    span.className = "badge badge-" + kind;
    span.textContent = text;
    parent.appendChild(document.createTextNode(" "));
    parent.appendChild(span);
  }

  function addTip(tip) {
    if (table.querySelector('input[name="tip"][value^="' + tip.id + ':"]')) return false;
    var row = document.createElement("tr");
    row.className = "tip-row tip-unread tip-fresh";
    row.setAttribute("data-url", tip.url);
    var select = cell(row);
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "tip";
    box.value = tip.id + ":" + tip.version;
    box.setAttribute("aria-label", "Select tip " + tip.number);
    select.appendChild(box);
    var number = cell(row);
    var link = document.createElement("a");
    link.href = tip.url;
    link.textContent = tip.number;
    number.appendChild(link);
    badge(number, "unread", "new");
    cell(row, tip["case"]);
    cell(row, tip.received);
    var source = cell(row, tip.channel);
    if (tip.comment) badge(source, "public comment", "comment");
    badge(cell(row), tip.status, tip.status);
    cell(row, tip.priority);
    cell(row, tip.excerpt, "tip-excerpt");
    var body = table.querySelector("tbody");
    body.insertBefore(row, body.firstChild);
    return true;
  }

  function poll() {
    if (document.hidden) return;
    var url = table.getAttribute("data-poll-url");
    var since = table.getAttribute("data-since");
    if (!since) return;
    var joiner = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + joiner + "since=" + encodeURIComponent(since), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || !data.tips || !data.tips.length) return;
        var added = 0;
        data.tips.slice().reverse().forEach(function (tip) {
          if (addTip(tip)) added += 1;
        });
        table.setAttribute("data-since", data.tips[0].created_at);
        if (added) {
          notice.hidden = false;
          notice.textContent = added + (added === 1 ? " new tip" : " new tips") + " added at the top.";
        }
      })
      .catch(function () { /* the next poll tries again */ });
  }

  function focusRow(index) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("tip-current", i === current); });
    var link = all[current].querySelector("a");
    if (link) link.focus();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                            target.tagName === "SELECT");
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "/" && !typing) {
      event.preventDefault();
      var search = document.getElementById("q");
      if (search) search.focus();
      return;
    }
    if (typing && !(target.name === "tip")) return;
    var all = rows();
    if (event.key === "j") { focusRow(current + 1); event.preventDefault(); }
    else if (event.key === "k") { focusRow(current - 1); event.preventDefault(); }
    else if ((event.key === "o" || event.key === "Enter") && all[current] && target.tagName !== "A") {
      window.location.href = all[current].getAttribute("data-url");
    } else if (event.key === "x" && all[current]) {
      var box = all[current].querySelector('input[name="tip"]');
      if (box) box.checked = !box.checked;
      event.preventDefault();
    }
  });

  if (table && table.getAttribute("data-polls") === "yes") {
    window.setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", poll);
  }
})();
