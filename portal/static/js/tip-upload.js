/* Tip forms with files: sent by XMLHttpRequest so a long video upload shows its
   progress, then the answer (the receipt, or the form again with what was typed and
   the files already received) replaces the page's main content. Without JavaScript
   the form is a plain multipart POST and works the same. No inline script (CSP). */
(function () {
  "use strict";

  function percent(loaded, total) {
    return total ? Math.min(100, Math.round((100 * loaded) / total)) : 0;
  }

  function show(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var main = document.querySelector("main");
    var incoming = next.querySelector("main");
    if (!main || !incoming) {
      return false;
    }
    document.title = next.title;
    main.replaceWith(document.importNode(incoming, true));
    bind(document);
    var heading = document.querySelector("main h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
    window.scrollTo(0, 0);
    return true;
  }

  function bind(root) {
    root.querySelectorAll("form[data-attachments]").forEach(function (form) {
      var input = form.querySelector("input[type=file]");
      var box = form.querySelector(".upload-progress");
      if (!input || !box || !window.FormData || !window.DOMParser) {
        return;
      }
      var bar = box.querySelector("progress");
      var status = box.querySelector(".upload-status");
      var button = form.querySelector("button[type=submit]");
      // What the visitor reads comes translated with the page (data- attributes of
      // the progress box; CSP allows no inline script); English if they are missing.
      var text = {
        progress: box.dataset.progress || "Sending your files: {percent}%",
        sent: box.dataset.sent || "Files sent. Saving your tip…",
        lost:
          box.dataset.lost ||
          "The connection was lost before your tip arrived. What you wrote is still here: please send it again.",
      };
      function progress(value) {
        return text.progress.replace("{percent}", String(value));
      }
      form.addEventListener("submit", function (event) {
        if (!input.files || input.files.length === 0) {
          return; // nothing to upload: the plain POST is as fast
        }
        event.preventDefault();
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) {
            bar.max = 100;
            bar.value = percent(e.loaded, e.total);
            status.textContent = progress(bar.value);
          }
        });
        xhr.upload.addEventListener("load", function () {
          status.textContent = text.sent;
        });
        function failed() {
          box.hidden = false;
          status.textContent = text.lost;
          if (button) {
            button.disabled = false;
          }
        }
        xhr.addEventListener("load", function () {
          if (!show(xhr.responseText)) {
            failed();
          }
        });
        xhr.addEventListener("error", failed);
        xhr.addEventListener("abort", failed);
        box.hidden = false;
        bar.value = 0;
        status.textContent = progress(0);
        if (button) {
          button.disabled = true;
        }
        xhr.send(new FormData(form));
      });
    });
  }

  bind(document);
})();
