/*
 * Live processing status of one clip, driven by its status JSON.
 *
 * Polls every second while something is queued or running, every five seconds
 * otherwise, and not at all while the tab is hidden. Shows a progress bar per
 * unfinished job, a failed job's error with a Retry button, keeps the version list's
 * badges current, tells the studio when the editing proxy is ready, and reloads the
 * page once when a version or the clip itself finished (the server renders players
 * and facts) unless the studio holds unsaved edits or a form of the page was touched.
 *
 * Every value from the server is shown with textContent.
 */
(function () {
  "use strict";

  var FAST_MS = 1000;
  var SLOW_MS = 5000;
  var JOB_LABELS = {
    ingest: "Checking and storing the original",
    proxy: "Preparing the editing copy",
    render: "Rendering version",
  };
  var STATUS_LABELS = {
    ingesting: "processing", queued: "queued", running: "running", processing: "processing",
    ready: "ready", succeeded: "done", failed: "failed", rejected: "rejected",
  };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function badge(status) {
    return el("span", "badge badge-" + status, STATUS_LABELS[status] || status);
  }

  function setBadge(container, status) {
    if (!container) return;
    var old = container.querySelector("[data-status-badge]");
    var fresh = badge(status);
    fresh.setAttribute("data-status-badge", "");
    if (old) old.replaceWith(fresh);
    else container.appendChild(fresh);
  }

  function ClipStatus(root) {
    this.root = root;
    this.url = root.dataset.statusUrl;
    this.retryUrl = root.dataset.retryUrl || "";
    this.renderedClipStatus = root.dataset.clipStatus;
    this.jobList = root.querySelector("[data-job-list]");
    this.banner = root.querySelector("[data-reload-banner]");
    this.timer = null;
    this.inFlight = false;
    this.reloading = false;
    this.last = null;
    var self = this;
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") self.pollNow();
      else self.cancel();
    });
    // The studio asks for a poll right after it saved a version.
    document.addEventListener("clip:poll", function () { self.pollNow(); });
    var reload = root.querySelector("[data-reload]");
    if (reload) reload.addEventListener("click", function () { self.reload(true); });
    // A person filling a form of the page (the approval checklist, a reason for
    // revoking) must not lose it to a reload: once they touched one, the page offers
    // the reload instead of doing it. The studio says itself whether it is dirty.
    this.formTouched = false;
    function touched(event) {
      var field = event.target;
      if (field && field.form && !(field.closest && field.closest("[data-studio-body]"))) {
        self.formTouched = true;
      }
    }
    document.addEventListener("input", touched, true);
    document.addEventListener("change", touched, true);
    this.pollNow();
  }

  ClipStatus.prototype.cancel = function () {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  };

  ClipStatus.prototype.schedule = function (ms) {
    this.cancel();
    if (document.visibilityState === "hidden" || this.reloading) return;
    var self = this;
    this.timer = setTimeout(function () { self.poll(); }, ms);
  };

  ClipStatus.prototype.pollNow = function () {
    this.cancel();
    this.poll();
  };

  ClipStatus.prototype.poll = function () {
    var self = this;
    if (this.inFlight || document.visibilityState === "hidden") return;
    this.inFlight = true;
    fetch(this.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (data) {
        self.inFlight = false;
        self.last = data;
        var active = self.render(data);
        document.dispatchEvent(new CustomEvent("clip:status", { detail: data }));
        self.schedule(active ? FAST_MS : SLOW_MS);
      })
      .catch(function () {
        self.inFlight = false;
        self.schedule(SLOW_MS);
      });
  };

  /* Render one status document; returns whether anything is still running. */
  ClipStatus.prototype.render = function (data) {
    var clip = data.clip || {};
    var jobs = data.jobs || [];
    var versions = data.versions || [];
    var active = clip.status === "ingesting" ||
      jobs.some(function (j) { return j.status === "queued" || j.status === "running"; }) ||
      versions.some(function (v) { return v.status === "queued" || v.status === "processing"; });

    setBadge(document.querySelector("[data-clip-badge]"), clip.status);
    this.renderJobs(jobs);
    var needReload = this.renderVersions(versions, jobs);
    if (clip.status !== this.renderedClipStatus && clip.status !== "ingesting") needReload = true;
    if (needReload) this.reload(false);
    return active;
  };

  ClipStatus.prototype.renderJobs = function (jobs) {
    var self = this;
    var shown = jobs.filter(function (j) { return j.status !== "succeeded"; });
    this.jobList.replaceChildren();
    shown.forEach(function (job) {
      var li = el("li", "job job-" + job.status);
      li.dataset.jobKind = job.kind;
      li.dataset.jobStatus = job.status;
      var head = el("div", "job-head");
      var label = JOB_LABELS[job.kind] || job.kind;
      if (job.kind === "render" && job.version !== null && job.version !== undefined) label += " " + job.version;
      head.appendChild(el("span", "job-label", label));
      head.appendChild(badge(job.status));
      li.appendChild(head);
      if (job.status === "running" || job.status === "queued") {
        var pct = Math.max(0, Math.min(100, Math.round((job.progress || 0) * 100)));
        var bar = el("div", "progress" + (job.status === "queued" ? " progress-waiting" : ""));
        bar.setAttribute("role", "progressbar");
        bar.setAttribute("aria-label", label);
        bar.setAttribute("aria-valuemin", "0");
        bar.setAttribute("aria-valuemax", "100");
        bar.setAttribute("aria-valuenow", String(pct));
        var fill = el("div", "progress-fill");
        fill.style.width = pct + "%";
        bar.appendChild(fill);
        li.appendChild(bar);
        var meta = el("div", "job-meta");
        meta.appendChild(el("span", "job-percent", job.status === "queued" ? "Waiting for a worker" : pct + " %"));
        if (job.stage) meta.appendChild(el("span", "job-stage", job.stage));
        if (job.attempts > 1) meta.appendChild(el("span", "job-attempts", "attempt " + job.attempts + " of " + job.max_attempts));
        li.appendChild(meta);
      } else if (job.status === "failed") {
        li.appendChild(el("p", "error", job.error || "The job failed."));
        if (job.attempts) {
          li.appendChild(el("p", "muted small", "Tried " + job.attempts + " of " + job.max_attempts + " times."));
        }
        if (self.retryUrl) {
          var form = el("form", "inline");
          form.method = "post";
          form.action = self.retryUrl;
          var token = el("input");
          token.type = "hidden";
          token.name = "csrf_token";
          token.value = csrfToken();
          form.appendChild(token);
          var button = el("button", "btn btn-small", "Retry");
          button.type = "submit";
          form.appendChild(button);
          li.appendChild(form);
        }
      }
      self.jobList.appendChild(li);
    });
    this.root.hidden = shown.length === 0 && (!this.banner || this.banner.hidden);
  };

  /* Update the version list; returns true when a version finished since rendering. */
  ClipStatus.prototype.renderVersions = function (versions, jobs) {
    var list = document.querySelector("[data-version-list]");
    if (!list) return false;
    var finished = false;
    versions.forEach(function (v) {
      var node = list.querySelector('[data-version-id="' + CSS.escape(v.id) + '"]');
      if (!node) {
        node = newVersionNode(v);
        var empty = list.querySelector("[data-no-versions]");
        if (empty) empty.remove();
        list.prepend(node);
      }
      setBadge(node.querySelector("summary"), v.status);
      var rendered = node.dataset.versionStatus;
      if ((v.status === "ready" || v.status === "failed") && rendered !== v.status) finished = true;
      var job = jobs.filter(function (j) { return j.kind === "render" && j.version === v.number; })[0];
      var bar = node.querySelector("[data-version-progress]");
      if (bar && job) {
        var pct = Math.max(0, Math.min(100, Math.round((job.progress || 0) * 100)));
        bar.querySelector(".progress-fill").style.width = pct + "%";
        bar.setAttribute("aria-valuenow", String(pct));
        var stage = node.querySelector("[data-version-stage]");
        if (stage) {
          stage.textContent = job.status === "queued" ? "Waiting for a worker…"
            : job.status === "failed" ? (job.error || "Failed")
            : pct + " %" + (job.stage ? " · " + job.stage : "");
        }
      }
    });
    return finished;
  };

  function newVersionNode(v) {
    var details = el("details", "version");
    details.dataset.versionId = v.id;
    details.dataset.versionNumber = String(v.number);
    details.dataset.versionStatus = "new";
    details.open = true;
    var summary = el("summary");
    summary.appendChild(el("span", "version-title", "Version " + v.number));
    var b = badge(v.status);
    b.setAttribute("data-status-badge", "");
    summary.appendChild(b);
    details.appendChild(summary);
    var body = el("div", "version-body");
    var bar = el("div", "progress");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", "Rendering of version " + v.number);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", "0");
    bar.setAttribute("data-version-progress", "");
    bar.appendChild(el("div", "progress-fill"));
    body.appendChild(bar);
    var stage = el("p", "muted small", "Waiting for a worker…");
    stage.setAttribute("data-version-stage", "");
    body.appendChild(stage);
    details.appendChild(body);
    return details;
  }

  ClipStatus.prototype.reload = function (force) {
    if (this.reloading) return;
    var studio = window.tattletaleStudio;
    if (!force && ((studio && studio.isDirty()) || this.formTouched)) {
      if (this.banner) {
        this.banner.hidden = false;
        this.root.hidden = false;
      }
      return;
    }
    if (!force && reloadedTooOften()) {
      // The server's page and its status disagree: stop reloading, offer a button.
      if (this.banner) {
        this.banner.hidden = false;
        this.root.hidden = false;
      }
      return;
    }
    if (studio) studio.markClean();
    this.reloading = true;
    this.cancel();
    window.location.reload();
  };

  /* At most three automatic reloads of this page per minute. */
  function reloadedTooOften() {
    var key = "tattletale.reloads." + window.location.pathname;
    var now = Date.now();
    var times = [];
    try {
      times = JSON.parse(window.sessionStorage.getItem(key) || "[]").filter(function (t) {
        return now - t < 60000;
      });
    } catch (e) {
      times = [];
    }
    if (times.length >= 3) return true;
    times.push(now);
    try { window.sessionStorage.setItem(key, JSON.stringify(times)); } catch (e) { /* private mode */ }
    return false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-clip-status-root]");
    if (root && root.dataset.statusUrl) window.tattletaleClipStatus = new ClipStatus(root);
  });
})();
