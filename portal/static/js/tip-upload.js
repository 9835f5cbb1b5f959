/* Tip forms with files. Where the page offers it (data-files-url on the progress box),
   each file is sent first, resumably, with the tus protocol (portal/http/tus.py: "a
   tip's files"): in chunks of the page's data-chunk-bytes, so a connection lost in
   the middle of a large video resumes from the offset the server has (asked with
   HEAD) instead of starting over. The files become drafts of the form (its draft
   secret goes with every request), and the form is then sent without them, the way a
   form without files is: the tip takes its drafts. A file the server refuses says
   why, and the tipster can send the tip with the others or choose another. The reply
   form of a tip's thread does the same, its files bound to the tip by the receipt
   session the form carries (sent as Tip-Thread).
   Where the page does not offer it, the form is sent by one XMLHttpRequest that shows
   its progress. Without JavaScript the form is a plain multipart POST and works the
   same. No inline script (CSP). */
(function () {
  "use strict";

  var TUS = "1.0.0";
  var RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
  // About two minutes of retries before the page gives the button back.
  var MAX_ATTEMPTS = 12;

  function percent(loaded, total) {
    return total ? Math.min(100, Math.floor((100 * loaded) / total)) : 0;
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

  // Errors come in the page's language: the upload URLs carry it like the page's links.
  function withLanguage(url) {
    var lang = document.documentElement.lang;
    if (!lang || /[?&]lang=/.test(url)) {
      return url;
    }
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "lang=" + encodeURIComponent(lang);
  }

  function problemText(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return body.detail || body.title || "";
    } catch (e) {
      return "";
    }
  }

  /* One file through tus: create, then PATCH chunk by chunk; a lost connection or a
     server error is retried after a pause, from the offset HEAD reports. Calls
     done(null) when the server has every byte, done(reason) when it refused the file. */
  function sendFile(file, options, done) {
    var location = options.location || null;
    var attempt = 0;
    var restarted = false;

    function headers(xhr) {
      xhr.setRequestHeader("Tus-Resumable", TUS);
      xhr.setRequestHeader("Tip-Draft", options.draft);
      if (options.thread) {
        // An answer's files: the tip's receipt session, whose tip they belong to.
        xhr.setRequestHeader("Tip-Thread", options.thread);
      }
    }

    function refusedOrRetry(xhr, retry) {
      // 409: another request of ours still holds the file (a cut connection the
      // server has not noticed yet), 423/429/5xx: later. Other 4xx: the file is refused.
      var status = xhr.status;
      if (status === 0 || status === 409 || status === 423 || status === 429 || status >= 500) {
        if (attempt >= MAX_ATTEMPTS) {
          // The tipster may send the form again later: it resumes this same upload.
          options.gaveUp();
          return;
        }
        options.lost();
        var delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
        attempt += 1;
        window.setTimeout(retry, delay);
        return;
      }
      done(problemText(xhr) || String(status));
    }

    function create() {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", withLanguage(options.url));
      headers(xhr);
      xhr.setRequestHeader("Upload-Length", String(file.size));
      xhr.onload = function () {
        if (xhr.status === 201 && xhr.getResponseHeader("Location")) {
          location = withLanguage(xhr.getResponseHeader("Location"));
          options.created(location);
          patch(0);
        } else {
          refusedOrRetry(xhr, create);
        }
      };
      xhr.onerror = function () {
        refusedOrRetry(xhr, create);
      };
      xhr.send(null);
    }

    function resume() {
      var xhr = new XMLHttpRequest();
      xhr.open("HEAD", location);
      headers(xhr);
      xhr.onload = function () {
        var offset = Number(xhr.getResponseHeader("Upload-Offset"));
        if (xhr.status === 200 && offset >= 0) {
          patch(offset);
        } else if (xhr.status === 422) {
          reasonOfRefusal();
        } else if ((xhr.status === 404 || xhr.status === 410) && options.location && !restarted) {
          // An upload of an earlier try that the server no longer has: start it again.
          restarted = true;
          location = null;
          create();
        } else {
          refusedOrRetry(xhr, resume);
        }
      };
      xhr.onerror = function () {
        refusedOrRetry(xhr, resume);
      };
      xhr.send(null);
    }

    // Refused while its answer was lost: a PATCH of nothing is answered with the reason.
    function reasonOfRefusal() {
      var xhr = new XMLHttpRequest();
      xhr.open("PATCH", location);
      headers(xhr);
      xhr.setRequestHeader("Upload-Offset", "0");
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      xhr.onload = function () {
        done(problemText(xhr) || String(xhr.status));
      };
      xhr.onerror = function () {
        refusedOrRetry(xhr, resume);
      };
      xhr.send(null);
    }

    function patch(offset) {
      options.progress(offset);
      if (offset >= file.size) {
        done(null);
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("PATCH", location);
      headers(xhr);
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      xhr.upload.addEventListener("progress", function (e) {
        options.progress(offset + e.loaded);
      });
      xhr.onload = function () {
        if (xhr.status === 204) {
          attempt = 0;
          options.resumed();
          patch(Number(xhr.getResponseHeader("Upload-Offset")));
        } else {
          refusedOrRetry(xhr, resume);
        }
      };
      xhr.onerror = function () {
        refusedOrRetry(xhr, resume);
      };
      xhr.send(file.slice(offset, Math.min(file.size, offset + options.chunk)));
    }

    if (location) {
      resume(); // started by an earlier try of this form: go on from the server's offset
    } else {
      create();
    }
  }

  function bindResumable(form, input, box, bar, status, button, text) {
    var draft = form.querySelector("input[name=draft]");
    // The reply form of a tip's thread carries the tip's receipt session.
    var thread = form.querySelector("input[name=token]");
    var chunk = Number(box.dataset.chunkBytes) || 8 * 1024 * 1024;
    // Uploads this page started, by file: a form sent again goes on with them.
    var started = {};
    var list = document.createElement("ul");
    list.className = "upload-refusals";
    list.setAttribute("aria-live", "polite"); // why a file was refused is read out
    box.appendChild(list);
    form.addEventListener("submit", function (event) {
      if (!input.files || input.files.length === 0 || !draft || !draft.value) {
        return; // nothing to upload: the form goes as it is
      }
      event.preventDefault();
      var files = Array.prototype.slice.call(input.files);
      var total = files.reduce(function (sum, f) {
        return sum + f.size;
      }, 0);
      var before = 0; // bytes of the files already sent
      var refused = [];
      list.textContent = "";
      box.hidden = false;
      bar.max = 100;
      bar.value = 0;
      status.textContent = text.progress.replace("{percent}", "0");
      if (button) {
        button.disabled = true;
      }
      var lostShown = false;
      function next(index) {
        if (index >= files.length) {
          finish();
          return;
        }
        var file = files[index];
        var key = [file.name, file.size, file.lastModified].join("|");
        sendFile(
          file,
          {
            location: started[key],
            created: function (location) {
              started[key] = location;
            },
            gaveUp: function () {
              status.textContent = text.lost;
              if (button) {
                button.disabled = false;
              }
            },
            url: box.dataset.filesUrl,
            draft: draft.value,
            thread: thread ? thread.value : "",
            chunk: chunk,
            progress: function (sent) {
              var value = percent(before + sent, total);
              bar.value = value;
              if (!lostShown) {
                status.textContent = text.progress.replace("{percent}", String(value));
              }
            },
            lost: function () {
              lostShown = true;
              status.textContent = text.resuming;
            },
            resumed: function () {
              lostShown = false;
            },
          },
          function (reason) {
            if (reason !== null) {
              refused.push(text.refused.replace("{name}", file.name).replace("{reason}", reason));
            }
            before += file.size;
            next(index + 1);
          }
        );
      }
      function finish() {
        // The files are on the server as the form's drafts: the form goes without them.
        input.value = "";
        if (refused.length) {
          refused.forEach(function (line) {
            var item = document.createElement("li");
            item.textContent = line;
            list.appendChild(item);
          });
          status.textContent = text.refusedMore;
          if (button) {
            button.disabled = false;
          }
          input.focus();
          return;
        }
        bar.value = 100;
        status.textContent = text.sent;
        if (button) {
          button.disabled = false;
        }
        if (form.requestSubmit) {
          form.requestSubmit(button || undefined);
        } else {
          form.submit();
        }
      }
      next(0);
    });
  }

  function bindOneRequest(form, input, box, bar, status, button, text) {
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
        resuming:
          box.dataset.resuming ||
          "The connection was lost. Trying again in a moment; nothing you sent so far is lost.",
        refused: box.dataset.refused || "{name} was not accepted: {reason}",
        refusedMore:
          box.dataset.refusedMore ||
          "The other files arrived and go with your tip. Send it again, or choose another file.",
      };
      if (box.dataset.filesUrl && window.Blob && Blob.prototype.slice) {
        bindResumable(form, input, box, bar, status, button, text);
      } else {
        bindOneRequest(form, input, box, bar, status, button, text);
      }
    });
  }

  bind(document);
})();
