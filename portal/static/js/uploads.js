/*
 * Resumable multi-file upload of footage (tus 1.0 through the vendored tus-js-client).
 *
 * The widget is the element [data-upload-widget] with data attributes:
 *   data-endpoint      the tus endpoint ("/staff/uploads/")
 *   data-attach-url    where a finished upload is attached to the case (POST JSON)
 *   data-case          the case public id, sent as tus metadata "case"
 *   data-max-bytes     the server's size limit (checked here first, to fail fast)
 *   data-chunk-size    bytes per PATCH request (50 MiB by default)
 *
 * Resuming: tus-js-client keeps each upload's URL in localStorage under a fingerprint
 * of the file (name, type, size, mtime) and the case, so after a reload or a crash the
 * user drops the same file again and it continues from the server's offset. A dropped
 * connection resumes by itself through retryDelays.
 *
 * No innerHTML anywhere: file names come from the user's disk and server messages are
 * shown with textContent.
 */
(function () {
  "use strict";

  var RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
  var DEFAULT_CHUNK = 50 * 1024 * 1024;
  var MAX_PARALLEL = 2;
  var STATE_LABELS = {
    queued: "Queued",
    uploading: "Uploading",
    paused: "Paused",
    retrying: "Reconnecting",
    attaching: "Attaching",
    done: "Done",
    failed: "Failed",
    cancelled: "Cancelled",
  };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function formatBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return "";
    var units = ["B", "KB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return (i === 0 ? String(n) : n.toFixed(n >= 100 ? 0 : 1)) + " " + units[i];
  }

  function formatDuration(seconds) {
    if (!isFinite(seconds) || seconds < 0) return "";
    seconds = Math.round(seconds);
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var two = function (v) { return (v < 10 ? "0" : "") + v; };
    return h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* The title of a problem+json body (RFC 9457), or a fallback. */
  function problemTitle(bodyText, status, fallback) {
    if (bodyText) {
      try {
        var body = JSON.parse(bodyText);
        if (body && typeof body.title === "string" && body.title) {
          return body.detail && typeof body.detail === "string" && body.detail !== body.title
            ? body.title + ": " + body.detail
            : body.title;
        }
      } catch (e) {
        /* not JSON: fall through */
      }
    }
    if (status === 413) return "The file is larger than the server accepts.";
    if (status === 507) return "The server has no room for this file right now. Try again later.";
    if (status === 429) return "You have too many unfinished uploads. Finish or cancel one first.";
    if (status === 403) return "You are not allowed to upload to this case.";
    if (status === 400) return "The server refused the request (your session may have expired: reload the page).";
    return fallback + (status ? " (HTTP " + status + ")" : "");
  }

  function tusErrorMessage(err) {
    var res = err && err.originalResponse;
    if (res) {
      var status = res.getStatus();
      var body = "";
      try { body = res.getBody(); } catch (e) { body = ""; }
      return problemTitle(body, status, "The upload failed");
    }
    if (!navigator.onLine) return "You are offline. The upload stops here; choose the file again to continue.";
    return "The connection to the server was lost. Choose the file again to continue where it stopped.";
  }

  function lastPathSegment(url) {
    var path = new URL(url, window.location.href).pathname.replace(/\/+$/, "");
    return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
  }

  /* -------------------------------------------------------------------------- */

  function UploadItem(widget, file) {
    this.widget = widget;
    this.file = file;
    this.state = "queued";
    this.upload = null;
    this.speed = null; // bytes/s, exponentially smoothed
    this.lastSample = null; // {t, bytes}
    this.bytesSent = 0;
    this.clip = null;
    this.build();
  }

  UploadItem.prototype.build = function () {
    var file = this.file;
    var li = el("li", "upload-item");
    var head = el("div", "upload-head");
    var name = el("span", "upload-name", file.name);
    name.title = file.name;
    head.appendChild(name);
    head.appendChild(el("span", "upload-size", formatBytes(file.size)));
    this.stateEl = el("span", "badge upload-state");
    head.appendChild(this.stateEl);
    li.appendChild(head);

    var bar = el("div", "progress");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", "Upload of " + file.name);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", "0");
    this.fill = el("div", "progress-fill");
    bar.appendChild(this.fill);
    this.bar = bar;
    li.appendChild(bar);

    var meta = el("div", "upload-meta");
    this.percentEl = el("span", "upload-percent", "0 %");
    this.sentEl = el("span", "upload-sent", "");
    this.speedEl = el("span", "upload-speed", "");
    this.etaEl = el("span", "upload-eta", "");
    meta.appendChild(this.percentEl);
    meta.appendChild(this.sentEl);
    meta.appendChild(this.speedEl);
    meta.appendChild(this.etaEl);
    li.appendChild(meta);

    this.messageEl = el("p", "upload-message");
    this.messageEl.setAttribute("role", "status");
    li.appendChild(this.messageEl);

    var actions = el("div", "upload-actions");
    this.pauseBtn = el("button", "btn btn-small", "Pause");
    this.pauseBtn.type = "button";
    this.pauseBtn.setAttribute("aria-label", "Pause upload of " + file.name);
    this.cancelBtn = el("button", "btn btn-small btn-danger-outline", "Cancel");
    this.cancelBtn.type = "button";
    this.cancelBtn.setAttribute("aria-label", "Cancel upload of " + file.name);
    this.retryBtn = el("button", "btn btn-small", "Try again");
    this.retryBtn.type = "button";
    this.retryBtn.hidden = true;
    this.removeBtn = el("button", "btn btn-small btn-ghost", "Dismiss");
    this.removeBtn.type = "button";
    this.removeBtn.hidden = true;
    this.openLink = el("a", "btn btn-small btn-primary", "Open clip");
    this.openLink.hidden = true;
    actions.appendChild(this.openLink);
    actions.appendChild(this.pauseBtn);
    actions.appendChild(this.retryBtn);
    actions.appendChild(this.cancelBtn);
    actions.appendChild(this.removeBtn);
    li.appendChild(actions);

    var self = this;
    this.pauseBtn.addEventListener("click", function () { self.togglePause(); });
    this.cancelBtn.addEventListener("click", function () { self.cancel(); });
    this.retryBtn.addEventListener("click", function () { self.retry(); });
    this.removeBtn.addEventListener("click", function () {
      li.remove();
      self.widget.items.splice(self.widget.items.indexOf(self), 1);
      self.widget.updateSummary();
    });
    this.li = li;
    this.setState("queued");
  };

  UploadItem.prototype.setState = function (state, message) {
    this.state = state;
    this.li.className = "upload-item is-" + state;
    this.li.dataset.state = state;
    this.stateEl.textContent = STATE_LABELS[state] || state;
    this.stateEl.className = "badge upload-state badge-" + state;
    if (message !== undefined) this.messageEl.textContent = message;
    var active = state === "uploading" || state === "retrying" || state === "paused" || state === "queued";
    this.pauseBtn.hidden = !(state === "uploading" || state === "retrying" || state === "paused");
    this.pauseBtn.textContent = state === "paused" ? "Resume" : "Pause";
    this.pauseBtn.setAttribute("aria-label", (state === "paused" ? "Resume" : "Pause") + " upload of " + this.file.name);
    this.cancelBtn.hidden = !active;
    this.retryBtn.hidden = state !== "failed" || !this.file;
    this.removeBtn.hidden = !(state === "failed" || state === "cancelled" || state === "done");
    if (state !== "uploading") {
      this.speedEl.textContent = "";
      this.etaEl.textContent = state === "done" || state === "attaching" ? "" : this.etaEl.textContent;
    }
    if (state === "paused" || state === "failed" || state === "cancelled") this.etaEl.textContent = "";
    this.widget.updateSummary();
  };

  UploadItem.prototype.setProgress = function (sent, total) {
    var pct = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
    this.bytesSent = sent;
    this.fill.style.width = pct + "%";
    this.bar.setAttribute("aria-valuenow", String(pct));
    this.percentEl.textContent = pct + " %";
    this.sentEl.textContent = formatBytes(sent) + " of " + formatBytes(total);
  };

  UploadItem.prototype.sampleSpeed = function (sent, total) {
    var now = performance.now();
    if (!this.lastSample || sent < this.lastSample.bytes) {
      this.lastSample = { t: now, bytes: sent };
      return;
    }
    var dt = (now - this.lastSample.t) / 1000;
    if (dt < 0.5) return;
    var rate = (sent - this.lastSample.bytes) / dt;
    this.speed = this.speed === null ? rate : 0.3 * rate + 0.7 * this.speed;
    this.lastSample = { t: now, bytes: sent };
    if (this.speed > 0) {
      this.speedEl.textContent = (this.speed / 1e6).toFixed(1) + " MB/s";
      this.etaEl.textContent = formatDuration((total - sent) / this.speed) + " left";
    }
  };

  /* The case is part of the fingerprint: the same file dropped on another case must
   * start a new upload, not continue one that belongs to the first case. */
  function fingerprintOf(widget, file) {
    return ["tattletale", widget.caseId, file.name, file.type, file.size, file.lastModified, widget.endpoint].join("|");
  }

  UploadItem.prototype.fingerprint = function (file) {
    return Promise.resolve(fingerprintOf(this.widget, file));
  };

  UploadItem.prototype.start = function () {
    var self = this;
    var w = this.widget;
    var file = this.file;
    var chunk = parseInt(w.root.dataset.chunkSize || "", 10);
    this.setState("uploading", "Starting…");
    this.lastSample = null;
    this.speed = null;
    var upload = new window.tus.Upload(file, {
      endpoint: w.endpoint,
      chunkSize: chunk > 0 ? chunk : DEFAULT_CHUNK,
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      storeFingerprintForResuming: true,
      fingerprint: function (f) { return self.fingerprint(f); },
      metadata: { filename: file.name, filetype: file.type || "application/octet-stream", case: w.caseId },
      headers: { "X-CSRFToken": csrfToken() },
      onProgress: function (sent, total) {
        if (self.state === "retrying") self.setState("uploading", "Connection restored.");
        else if (self.state === "uploading" && self.messageEl.textContent === "Starting…") self.messageEl.textContent = "";
        self.setProgress(sent, total);
        self.sampleSpeed(sent, total);
      },
      onShouldRetry: function (err, attempt) {
        // As tus-js-client's default: retry network errors, 5xx, 409 and 423, not
        // other 4xx (a refusal does not get better by asking again). Nor 507: the
        // server's disk is full, which seconds do not change; the server keeps what
        // it has, and "Try again" continues from there once there is room.
        var status = err && err.originalResponse ? err.originalResponse.getStatus() : 0;
        var retry = (status < 400 || (status >= 500 && status !== 507) || status === 409 || status === 423) &&
          navigator.onLine !== false;
        if (retry && self.state !== "paused" && self.state !== "cancelled") {
          var delay = RETRY_DELAYS[attempt] || 0;
          self.setState(
            "retrying",
            "Connection interrupted. Retrying" + (delay ? " in " + Math.round(delay / 1000) + " s" : "") +
              " (attempt " + (attempt + 1) + " of " + RETRY_DELAYS.length + ")…"
          );
        }
        return retry;
      },
      onError: function (err) {
        if (self.state === "cancelled") return;
        self.setState("failed", tusErrorMessage(err));
        w.pump();
      },
      onSuccess: function () {
        self.setProgress(file.size, file.size);
        self.attach();
      },
    });
    this.upload = upload;
    upload
      .findPreviousUploads()
      .then(function (previous) {
        if (self.state !== "uploading") return; // cancelled or paused meanwhile
        if (previous.length) {
          previous.sort(function (a, b) { return (b.creationTime || "").localeCompare(a.creationTime || ""); });
          upload.resumeFromPreviousUpload(previous[0]);
          self.messageEl.textContent = "Resuming the earlier upload of this file…";
        }
        upload.start();
      })
      .catch(function () {
        upload.start();
      });
  };

  UploadItem.prototype.togglePause = function () {
    if (!this.upload) return;
    if (this.state === "paused") {
      this.setState("uploading", "Resuming…");
      this.lastSample = null;
      this.upload.start();
    } else {
      this.upload.abort(false);
      this.setState("paused", "Paused. The server keeps what it received.");
      this.widget.pump();
    }
  };

  UploadItem.prototype.cancel = function () {
    var self = this;
    var upload = this.upload;
    var wasStarted = !!(upload && upload.url);
    this.setState("cancelled", "Cancelled.");
    this.widget.pump();
    if (upload) {
      // abort(true) also terminates the upload on the server (tus termination):
      // nothing half-received is kept for a file the user dropped.
      upload.abort(wasStarted).catch(function () {
        self.messageEl.textContent = "Cancelled. (The server will discard the partial file when it expires.)";
      });
    }
  };

  UploadItem.prototype.retry = function () {
    if (this.uploadId && this.state === "failed" && this.attachFailed) {
      this.attach();
    } else {
      this.setState("queued", "");
      this.widget.pump();
    }
  };

  UploadItem.prototype.attach = function () {
    var self = this;
    var w = this.widget;
    this.uploadId = lastPathSegment(this.upload.url);
    this.attachFailed = false;
    this.setState("attaching", "Upload complete. Adding the clip to the case…");
    fetch(w.attachUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify({ upload_id: this.uploadId }),
    })
      .then(function (res) {
        return res.text().then(function (text) {
          if (!res.ok) throw new Error(problemTitle(text, res.status, "The clip could not be added"));
          var data = JSON.parse(text);
          return data.clip;
        });
      })
      .then(function (clip) {
        self.clip = clip;
        self.setState("done", "Added to the case. Processing the clip…");
        if (clip && clip.url) {
          self.openLink.href = clip.url;
          self.openLink.hidden = false;
          self.openLink.setAttribute("aria-label", "Open clip " + self.file.name);
        }
        w.pump();
        w.clipAdded(clip, self.file.name);
      })
      .catch(function (err) {
        self.attachFailed = true;
        self.setState("failed", err && err.message ? err.message : "The clip could not be added.");
        w.pump();
      });
  };

  /* -------------------------------------------------------------------------- */

  function UploadWidget(root) {
    this.root = root;
    this.endpoint = root.dataset.endpoint;
    this.attachUrl = root.dataset.attachUrl;
    this.caseId = root.dataset.case || "";
    this.maxBytes = parseInt(root.dataset.maxBytes || "0", 10);
    this.items = [];
    this.input = root.querySelector("input[type=file]");
    this.zone = root.querySelector("[data-dropzone]");
    this.list = root.querySelector("[data-upload-list]");
    this.summary = root.querySelector("[data-upload-summary]");
    this.resumeBox = root.querySelector("[data-resume-list]");
    this.bind();
    this.showUnfinished();
  }

  UploadWidget.prototype.bind = function () {
    var self = this;
    this.input.addEventListener("change", function () {
      self.addFiles(self.input.files);
      self.input.value = ""; // the same file may be chosen again (to resume it)
    });
    var zone = this.zone;
    var depth = 0;
    zone.addEventListener("dragenter", function (e) {
      e.preventDefault();
      depth += 1;
      zone.classList.add("is-dragover");
    });
    zone.addEventListener("dragover", function (e) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove("is-dragover");
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      depth = 0;
      zone.classList.remove("is-dragover");
      if (e.dataTransfer && e.dataTransfer.files) self.addFiles(e.dataTransfer.files);
    });
    // A file dropped next to the zone would make the browser navigate to it.
    window.addEventListener("dragover", function (e) { e.preventDefault(); });
    window.addEventListener("drop", function (e) { e.preventDefault(); });
    zone.addEventListener("keydown", function (e) {
      if ((e.key === "Enter" || e.key === " ") && e.target === zone) {
        e.preventDefault();
        self.input.click();
      }
    });
    window.addEventListener("beforeunload", function (e) {
      if (self.busy()) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
  };

  UploadWidget.prototype.busy = function () {
    return this.items.some(function (item) {
      return ["queued", "uploading", "retrying", "attaching"].indexOf(item.state) >= 0;
    });
  };

  UploadWidget.prototype.addFiles = function (files) {
    var self = this;
    Array.prototype.forEach.call(files, function (file) {
      self.forgetOffer(file);
      var item = new UploadItem(self, file);
      self.items.push(item);
      self.list.appendChild(item.li);
      if (self.maxBytes && file.size > self.maxBytes) {
        item.setState("failed", "This file is " + formatBytes(file.size) + "; the limit is " + formatBytes(self.maxBytes) + ".");
        item.retryBtn.hidden = true;
      } else if (file.size === 0) {
        item.setState("failed", "This file is empty.");
        item.retryBtn.hidden = true;
      }
    });
    this.list.hidden = this.items.length === 0;
    this.pump();
  };

  /* The file was chosen again: it is no longer an unfinished upload to offer. */
  UploadWidget.prototype.forgetOffer = function (file) {
    if (!this.resumeBox) return;
    var key = "tus::" + fingerprintOf(this, file) + "::";
    var box = this.resumeBox;
    Array.prototype.forEach.call(box.querySelectorAll("li"), function (li) {
      if (li.dataset.storageKey && li.dataset.storageKey.indexOf(key) === 0) li.remove();
    });
    if (!box.querySelector("li")) box.hidden = true;
  };

  /* Start queued uploads while fewer than MAX_PARALLEL are running. */
  UploadWidget.prototype.pump = function () {
    var running = this.items.filter(function (i) {
      return i.state === "uploading" || i.state === "retrying";
    }).length;
    for (var k = 0; k < this.items.length && running < MAX_PARALLEL; k++) {
      if (this.items[k].state === "queued") {
        this.items[k].start();
        running += 1;
      }
    }
    this.updateSummary();
  };

  UploadWidget.prototype.updateSummary = function () {
    if (!this.summary) return;
    var counts = {};
    this.items.forEach(function (i) { counts[i.state] = (counts[i.state] || 0) + 1; });
    var parts = [];
    var active = (counts.uploading || 0) + (counts.retrying || 0) + (counts.attaching || 0);
    if (active) parts.push(active + " uploading");
    if (counts.queued) parts.push(counts.queued + " queued");
    if (counts.paused) parts.push(counts.paused + " paused");
    if (counts.done) parts.push(counts.done + " done");
    if (counts.failed) parts.push(counts.failed + " failed");
    this.summary.textContent = parts.join(" · ");
  };

  /* Unfinished uploads of this case from an earlier visit (tus keeps their URLs). */
  UploadWidget.prototype.showUnfinished = function () {
    var self = this;
    if (!this.resumeBox || !window.tus || !window.tus.defaultOptions.urlStorage) return;
    var storage = window.tus.defaultOptions.urlStorage;
    var prefix = "tus::tattletale|" + this.caseId + "|";
    storage
      .findAllUploads()
      .then(function (uploads) {
        var mine = uploads.filter(function (u) {
          return u.urlStorageKey && u.urlStorageKey.indexOf(prefix) === 0;
        });
        if (!mine.length) return;
        var ul = self.resumeBox.querySelector("ul");
        mine.forEach(function (u) {
          var name = (u.metadata && u.metadata.filename) || "a file";
          var li = el("li", "resume-item");
          li.dataset.storageKey = u.urlStorageKey;
          var text = el("span", "", name + " (" + formatBytes(u.size) + ")");
          var discard = el("button", "btn btn-small btn-ghost", "Discard");
          discard.type = "button";
          discard.setAttribute("aria-label", "Discard the unfinished upload of " + name);
          discard.addEventListener("click", function () {
            storage.removeUpload(u.urlStorageKey);
            if (u.uploadUrl) {
              window.tus.Upload.terminate(u.uploadUrl, { headers: { "X-CSRFToken": csrfToken() } }).catch(function () {});
            }
            li.remove();
            if (!ul.children.length) self.resumeBox.hidden = true;
          });
          li.appendChild(text);
          li.appendChild(discard);
          ul.appendChild(li);
        });
        self.resumeBox.hidden = false;
      })
      .catch(function () {});
  };

  /* A clip was attached: refresh the clips grid from the server's rendering. */
  UploadWidget.prototype.clipAdded = function (clip, filename) {
    var grid = document.querySelector("[data-clip-grid]");
    if (!grid) return;
    refreshGrid(grid).catch(function () {
      // The page could not be fetched: show a minimal card so the user has the link.
      if (!clip || !clip.url) return;
      var empty = grid.querySelector("[data-clip-empty]");
      if (empty) empty.remove();
      var a = el("a", "clip-card");
      a.href = clip.url;
      var thumb = el("div", "clip-thumb clip-thumb-pending");
      thumb.appendChild(el("span", "clip-thumb-label", "Processing…"));
      a.appendChild(thumb);
      var body = el("div", "clip-body");
      body.appendChild(el("span", "clip-name", filename));
      body.appendChild(el("span", "badge badge-ingesting", "processing"));
      a.appendChild(body);
      grid.querySelector("[data-clip-list]").prepend(a);
    });
  };

  /* Replace the grid's contents with a fresh server rendering of this page. */
  function refreshGrid(grid) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.text();
      })
      .then(function (html) {
        // Our own server's escaped rendering, parsed inertly (DOMParser runs no
        // scripts) and moved over node by node.
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-clip-grid]");
        if (!fresh) throw new Error("no grid");
        grid.replaceChildren.apply(grid, Array.prototype.map.call(fresh.childNodes, function (n) {
          return document.importNode(n, true);
        }));
        scheduleGridRefresh(grid);
      });
  }

  /* While a clip on the page is still ingesting, refresh the grid every few seconds. */
  var gridTimer = null;
  function scheduleGridRefresh(grid) {
    if (gridTimer) clearTimeout(gridTimer);
    gridTimer = null;
    if (!grid.querySelector('[data-clip-status="ingesting"]')) return;
    gridTimer = setTimeout(function () {
      gridTimer = null;
      if (document.visibilityState === "hidden") {
        document.addEventListener("visibilitychange", function again() {
          if (document.visibilityState === "visible") {
            document.removeEventListener("visibilitychange", again);
            scheduleGridRefresh(grid);
          }
        });
        return;
      }
      refreshGrid(grid).catch(function () { scheduleGridRefresh(grid); });
    }, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var grid = document.querySelector("[data-clip-grid]");
    if (grid) scheduleGridRefresh(grid);
    var root = document.querySelector("[data-upload-widget]");
    if (!root) return;
    if (!window.tus || !window.tus.isSupported) {
      var msg = root.querySelector("[data-upload-unsupported]");
      if (msg) msg.hidden = false;
      return;
    }
    window.tattletaleUploads = new UploadWidget(root);
  });
})();
