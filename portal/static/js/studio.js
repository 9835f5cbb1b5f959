/*
 * The edit studio: trims, regions (blur, pixelate or solid box; still, or moving by
 * keyframes from the plan), audio (the whole clip, or muted or bleeped ranges), caption,
 * watermark and poster frame of one clip, previewed live over the editing proxy and
 * saved as an EditPlan (see media_pipeline/plan.py) that the server renders into a new
 * version.
 *
 * Coordinates: the plan speaks source display pixels (clip width x height, rotation
 * applied) and seconds on the source timeline; the proxy is a smaller copy of the
 * same picture. The overlay sits exactly over the displayed picture (letterboxing
 * removed) and regions are kept in source pixels, drawn as percentages of it. Behind
 * the timeline, thumbnails from version 1's sprite sheet (the whole source) help find
 * the moment.
 *
 * Styles are set through element.style (allowed by the CSP), never style attributes.
 */
(function () {
  "use strict";

  var MIN_CLIP_S = 1.0; // media_pipeline.plan.MIN_CLIP_S
  var MIN_REGION_PX = 4; // the plan refuses smaller rectangles
  var MAX_REGIONS = 32; // media_pipeline.plan.MAX_REGIONS
  var MAX_KEYFRAMES = 120; // media_pipeline.plan.MAX_KEYFRAMES
  var EFFECTS = [["blur", "Blur"], ["pixelate", "Pixelate"], ["box", "Solid box"]];
  var MAX_AUDIO_RANGES = 32; // media_pipeline.plan.MAX_AUDIO_RANGES
  var AUDIO_EFFECTS = [["mute", "Mute"], ["bleep", "Bleep"]];
  var AUDIO_RANGE_S = 2; // a new range's length: a name or two

  /* A keyframed region's box at time t, linear between keyframes and held before the
   * first and after the last: the interpolation the render does (media_pipeline/graph.py). */
  function boxAt(keys, t) {
    if (t <= keys[0].t) return keys[0];
    for (var i = 1; i < keys.length; i++) {
      if (t <= keys[i].t) {
        var a = keys[i - 1], b = keys[i], f = (t - a.t) / (b.t - a.t);
        var at = function (k) { return Math.round(a[k] + f * (b[k] - a[k])); };
        return { t: t, x: at("x"), y: at("y"), w: at("w"), h: at("h") };
      }
    }
    return keys[keys.length - 1];
  }

  /* A region of a stored plan: a version 1 still rectangle or a track. Tracks of one
   * box become still rectangles the studio edits; longer tracks keep their keyframes. */
  function regionFromPlan(b, isTrack) {
    var keys = isTrack && Array.isArray(b.keyframes) ? b.keyframes.filter(function (k) {
      return k && typeof k === "object" && typeof k.t === "number";
    }) : [];
    var first = isTrack ? (keys[0] || { x: 0, y: 0, w: 0, h: 0 }) : { x: b.x, y: b.y, w: b.width, h: b.height };
    return {
      x: first.x | 0, y: first.y | 0, width: first.w | 0, height: first.h | 0,
      start: typeof b.start === "number" ? b.start : null,
      end: typeof b.end === "number" ? b.end : null,
      whole_frame: b.whole_frame === true,
      effect: EFFECTS.some(function (e) { return e[0] === b.effect; }) ? b.effect : "blur",
      source: typeof b.source === "string" ? b.source : "manual",
      keyframes: keys.length > 1 ? keys.map(function (k) {
        return { t: k.t, x: k.x | 0, y: k.y | 0, w: k.w | 0, h: k.h | 0 };
      }) : null,
      box: null,
    };
  }

  function $(root, sel) { return root.querySelector(sel); }
  function $$(root, sel) { return Array.prototype.slice.call(root.querySelectorAll(sel)); }
  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function r3(v) { return Math.round(v * 1000) / 1000; }
  function num(v) { var n = parseFloat(v); return isFinite(n) ? n : null; }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function formatTime(t) {
    if (t === null || t === undefined || !isFinite(t)) return "—";
    t = Math.max(0, t);
    var m = Math.floor(t / 60);
    var s = t - m * 60;
    var str = s.toFixed(2);
    if (s < 10) str = "0" + str;
    if (str === "60.00") { m += 1; str = "00.00"; }
    return m + ":" + str;
  }

  /* A labelled time field with a "now" button that takes the playhead. o: id, label,
     attr (its data attribute), value (null: empty), placeholder, max, nowLabel,
     video, and onChange(typed number or null) returning the value to show. */
  function timeField(o) {
    var lab = el("label", "small-label", o.label);
    lab.htmlFor = o.id;
    var input = el("input", "num");
    input.type = "number";
    input.step = "0.01";
    input.min = "0";
    if (o.max !== undefined) input.max = o.max;
    input.id = o.id;
    if (o.placeholder) input.placeholder = o.placeholder;
    var show = function (v) { input.value = v === null ? "" : v.toFixed(2); };
    show(o.value);
    input.setAttribute(o.attr, "");
    input.addEventListener("change", function () { show(o.onChange(num(input.value))); });
    var now = el("button", "btn btn-tiny", "now");
    now.type = "button";
    now.setAttribute("aria-label", o.nowLabel);
    now.addEventListener("click", function () {
      input.value = (o.video.currentTime || 0).toFixed(2);
      input.dispatchEvent(new Event("change"));
    });
    var wrap = el("div", "time-field");
    wrap.appendChild(lab);
    wrap.appendChild(input);
    wrap.appendChild(now);
    return wrap;
  }

  /* A labelled select of [value, text] options. o: id, label, attr, options, value,
     onChange(chosen value). */
  function selectField(o) {
    var lab = el("label", "small-label", o.label);
    lab.htmlFor = o.id;
    var select = el("select");
    select.id = o.id;
    select.setAttribute(o.attr, "");
    o.options.forEach(function (e) {
      var option = el("option", null, e[1]);
      option.value = e[0];
      option.selected = o.value === e[0];
      select.appendChild(option);
    });
    select.addEventListener("change", function () { o.onChange(select.value); });
    var wrap = el("div", "time-field");
    wrap.appendChild(lab);
    wrap.appendChild(select);
    return wrap;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function Studio(root) {
    this.root = root;
    this.saveUrl = root.dataset.saveUrl;
    this.W = parseInt(root.dataset.width || "0", 10) || 0;
    this.H = parseInt(root.dataset.height || "0", 10) || 0;
    this.duration = num(root.dataset.duration) || 0;
    this.fps = num(root.dataset.frameRate) || 30;
    this.inPt = 0;
    this.outPt = this.duration;
    this.regions = [];
    this.selected = -1;
    this.posterSource = null;
    this.dirty = false;
    this.enabled = false;
    this.raf = null;

    this.video = $(root, "[data-video]");
    this.stage = $(root, "[data-stage]");
    this.overlay = $(root, "[data-overlay]");
    this.drawRect = $(root, "[data-draw-rect]");
    this.captionPreview = $(root, "[data-preview-caption]");
    this.watermarkPreview = $(root, "[data-preview-watermark]");
    this.track = $(root, "[data-track]");
    this.rangeEl = $(root, "[data-range]");
    this.playhead = $(root, "[data-playhead]");
    this.posterMarker = $(root, "[data-poster-marker]");
    this.regionSpan = $(root, "[data-region-span]");
    this.handleIn = $(root, '[data-handle="in"]');
    this.handleOut = $(root, '[data-handle="out"]');
    this.inInput = $(root, "[data-in-input]");
    this.outInput = $(root, "[data-out-input]");
    this.regionList = $(root, "[data-region-list]");
    this.regionEmpty = $(root, "[data-region-empty]");
    this.captionToggle = $(root, "[data-caption-toggle]");
    this.captionLines = $$(root, "[data-caption-line]");
    this.watermark = $(root, "[data-watermark]");
    this.saveBtn = $(root, "[data-save]");
    this.saveMessage = $(root, "[data-save-message]");
    // Proposals: faces a detector found, a box a tracker followed (reviewed here;
    // nothing is covered until accepted and saved).
    this.proposalsUrl = root.dataset.proposalsUrl || "";
    this.suggestions = [];
    this.findFacesBtn = $(root, "[data-find-faces]");
    this.followBtn = $(root, "[data-follow]");
    this.proposalStatus = $(root, "[data-proposal-status]");
    this.proposalFill = $(root, "[data-proposal-fill]");
    this.proposalMessage = $(root, "[data-proposal-message]");
    this.suggestPanel = $(root, "[data-suggestions]");
    this.suggestList = $(root, "[data-suggestion-list]");
    // Audio ranges (source seconds), muted or bleeped while the clip's audio is kept.
    this.audioRanges = [];
    this.hasAudio = root.dataset.hasAudio !== "no";
    this.rangeBox = $(root, "[data-audio-ranges]");
    this.rangeList = $(root, "[data-range-list]");
    this.rangeEmpty = $(root, "[data-range-empty]");
    this.rangeOff = $(root, "[data-range-off]");
    this.addRangeBtn = $(root, "[data-add-range]");
    this.audioSpans = $(root, "[data-audio-spans]");
    // Thumbnails behind the timeline: version 1's sprite sheet, placed by its index.
    this.thumbs = $(root, "[data-thumbs]");
    this.spriteCues = null;
    this.keyTicks = el("div", "timeline-keys");
    if (this.track) this.track.insertBefore(this.keyTicks, this.playhead);
    this.bind();

    var proxy = root.dataset.proxyUrl;
    if (proxy) this.enable(proxy);
    if (this.thumbs && root.dataset.spriteUrl && root.dataset.spriteIndexUrl) this.loadSprite();
  }

  Studio.prototype.isDirty = function () { return this.dirty; };
  Studio.prototype.markClean = function () { this.dirty = false; };
  Studio.prototype.touch = function () { this.dirty = true; };

  /* ------------------------------------------------------------ enabling */

  /* Start from the newest version's plan: editing is usually a second pass. */
  Studio.prototype.loadPlan = function () {
    var text = this.root.dataset.basePlan;
    if (!text) return;
    var plan;
    try { plan = JSON.parse(text); } catch (e) { return; }
    if (!plan || typeof plan !== "object") return;
    var self = this;
    var d = this.duration;
    if (typeof plan.trim_start === "number") this.inPt = clamp(plan.trim_start, 0, d);
    if (typeof plan.trim_end === "number") this.outPt = clamp(plan.trim_end, this.inPt, d);
    // Version 1 plans hold still rectangles under "blur", later ones tracks under
    // "regions"; the server reads them in that order, so the indexes agree.
    (Array.isArray(plan.blur) ? plan.blur : []).forEach(function (b) {
      if (b && typeof b === "object") self.regions.push(regionFromPlan(b, false));
    });
    (Array.isArray(plan.regions) ? plan.regions : []).forEach(function (b) {
      if (b && typeof b === "object") self.regions.push(regionFromPlan(b, true));
    });
    var audio = this.root.querySelector('input[name="audio"][value="' + (plan.audio || "keep") + '"]');
    if (audio) audio.checked = true;
    (Array.isArray(plan.audio_ranges) ? plan.audio_ranges : []).forEach(function (a) {
      if (!a || typeof a.start !== "number" || typeof a.end !== "number") return;
      self.audioRanges.push({ start: a.start, end: a.end, effect: a.effect === "bleep" ? "bleep" : "mute" });
    });
    this.renderAudioRanges();
    var lines = plan.caption && Array.isArray(plan.caption.lines) ? plan.caption.lines : null;
    if (lines) {
      this.captionToggle.checked = true;
      this.captionLines.forEach(function (input, i) { input.value = typeof lines[i] === "string" ? lines[i] : ""; });
    }
    if (this.watermark) this.watermark.checked = !!plan.watermark;
    var note = $(this.root, "[data-base-note]");
    if (note && this.root.dataset.baseVersion) {
      note.textContent = "Starting from the edits of version " + this.root.dataset.baseVersion + ". ";
    }
    if (typeof plan.poster_time === "number") this.pendingPoster = this.inPt + plan.poster_time;
    this.renderRegions();
    this.updateCaption();
    this.updateWatermark();
    this.dirty = false;
  };

  Studio.prototype.enable = function (proxyUrl) {
    if (this.enabled) return;
    this.enabled = true;
    $(this.root, "[data-studio-waiting]").hidden = true;
    $(this.root, "[data-studio-body]").hidden = false;
    this.video.src = proxyUrl;
    this.layout();
  };

  Studio.prototype.onStatus = function (data) {
    var clip = data && data.clip;
    if (!clip) return;
    if (!this.W && clip.width) this.W = clip.width;
    if (!this.H && clip.height) this.H = clip.height;
    if (!this.duration && clip.duration_s) {
      this.duration = clip.duration_s;
      this.outPt = this.duration;
    }
    if (clip.frame_rate) this.fps = clip.frame_rate;
    if (clip.proxy_url && !this.enabled) this.enable(clip.proxy_url);
  };

  /* ------------------------------------------------------------ events */

  Studio.prototype.bind = function () {
    var self = this;
    var v = this.video;
    v.addEventListener("loadedmetadata", function () {
      if (!self.duration && isFinite(v.duration)) self.duration = v.duration;
      if (!self.outPt || self.outPt > self.duration) self.outPt = self.duration;
      if (!self.W) { self.W = v.videoWidth; self.H = v.videoHeight; }
      if (!self.planLoaded) {
        self.planLoaded = true;
        self.loadPlan();
        // The newest face search, shown again (less what was accepted since).
        if (self.root.dataset.facesUrl) self.pollProposal(self.root.dataset.facesUrl, null, true);
      }
      if (self.pendingPoster !== undefined && self.pendingPoster !== null) {
        self.setPoster(self.pendingPoster);
        self.pendingPoster = null;
        self.dirty = false;
      }
      self.layout();
      self.updateTimeline();
      self.updateTrimInputs();
      self.updateTime();
    });
    v.addEventListener("timeupdate", function () { self.updateTime(); });
    v.addEventListener("seeked", function () { self.updateTime(); });
    v.addEventListener("play", function () { self.updatePlayButton(); self.loop(); });
    v.addEventListener("pause", function () { self.updatePlayButton(); self.updateTime(); });
    v.addEventListener("ended", function () { self.updatePlayButton(); });

    if (window.ResizeObserver) new ResizeObserver(function () { self.layout(); }).observe(this.stage);
    if (window.ResizeObserver) new ResizeObserver(function () { self.renderThumbs(); }).observe(this.track);
    window.addEventListener("resize", function () { self.layout(); });

    $(this.root, "[data-play]").addEventListener("click", function () { self.togglePlay(); });
    $$(this.root, "[data-step]").forEach(function (b) {
      b.addEventListener("click", function () { self.step(parseInt(b.dataset.step, 10)); });
    });
    $(this.root, "[data-set-in]").addEventListener("click", function () { self.setIn(v.currentTime); });
    $(this.root, "[data-set-out]").addEventListener("click", function () { self.setOut(v.currentTime); });
    this.inInput.addEventListener("change", function () {
      var n = num(self.inInput.value);
      if (n !== null) self.setIn(n); else self.updateTrimInputs();
    });
    this.outInput.addEventListener("change", function () {
      var n = num(self.outInput.value);
      if (n !== null) self.setOut(n); else self.updateTrimInputs();
    });

    this.bindTimeline();
    this.bindOverlay();

    $$(this.root, 'input[name="audio"]').forEach(function (r) {
      r.addEventListener("change", function () {
        self.touch();
        self.clearError("audio");
        self.updateAudioRangesState();
      });
    });
    if (this.rangeBox) {
      this.rangeBox.hidden = !this.hasAudio;
      this.addRangeBtn.addEventListener("click", function () { self.addAudioRange(v.currentTime || 0); });
    }
    this.captionToggle.addEventListener("change", function () {
      self.touch();
      self.updateCaption();
    });
    this.captionLines.forEach(function (input) {
      input.addEventListener("input", function () { self.touch(); self.updateCaption(); });
    });
    if (this.watermark) {
      this.watermark.addEventListener("change", function () { self.touch(); self.updateWatermark(); });
    }
    $(this.root, "[data-set-poster]").addEventListener("click", function () { self.setPoster(v.currentTime); });
    $(this.root, "[data-clear-poster]").addEventListener("click", function () { self.setPoster(null); });
    this.saveBtn.addEventListener("click", function () { self.save(); });
    if (this.findFacesBtn) {
      if (!this.proposalsUrl) this.findFacesBtn.hidden = this.followBtn.hidden = true;
      this.findFacesBtn.addEventListener("click", function () { self.requestProposal({ kind: "faces" }, null); });
      this.followBtn.addEventListener("click", function () { self.followSelected(); });
      $(this.root, "[data-accept-all]").addEventListener("click", function () { self.acceptAllSuggestions(); });
      $(this.root, "[data-reject-all]").addEventListener("click", function () { self.clearSuggestions(); });
    }

    document.addEventListener("keydown", function (e) { self.onKey(e); });
    document.addEventListener("clip:status", function (e) { self.onStatus(e.detail); });
    window.addEventListener("beforeunload", function (e) {
      if (self.dirty) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
    this.updateCaption();
    this.updateWatermark();
  };

  Studio.prototype.onKey = function (e) {
    if (!this.enabled || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var tag = t && t.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
    var v = this.video;
    switch (e.key) {
      case " ":
        if (tag === "BUTTON" || tag === "SUMMARY" || tag === "A" || (t && t.getAttribute("role") === "slider")) return;
        e.preventDefault();
        this.togglePlay();
        break;
      case ",":
        e.preventDefault();
        this.step(-1);
        break;
      case ".":
        e.preventDefault();
        this.step(1);
        break;
      case "i":
      case "I":
        this.setIn(v.currentTime);
        break;
      case "o":
      case "O":
        this.setOut(v.currentTime);
        break;
      case "Delete":
      case "Backspace":
        if (this.selected >= 0) {
          e.preventDefault();
          this.deleteRegion(this.selected);
        }
        break;
      case "Escape":
        this.select(-1);
        break;
      default:
    }
  };

  /* ------------------------------------------------------------ playback */

  Studio.prototype.togglePlay = function () {
    var v = this.video;
    if (v.paused) {
      // Preview what the version will hold: play the selected range.
      if (v.currentTime < this.inPt - 0.01 || v.currentTime >= this.outPt - 0.02) v.currentTime = this.inPt;
      var p = v.play();
      if (p && p.catch) p.catch(function () {});
    } else {
      v.pause();
    }
  };

  Studio.prototype.step = function (frames) {
    var v = this.video;
    v.pause();
    var frame = 1 / this.fps;
    // Land in the middle of the frame: seeking to its exact start may show the one before.
    var current = Math.floor(v.currentTime * this.fps + 1e-6);
    this.seek(clamp((current + frames) * frame + frame / 2, 0, Math.max(0, this.duration - frame / 2)));
  };

  Studio.prototype.seek = function (t) {
    this.video.currentTime = clamp(t, 0, this.duration || 0);
    this.updateTime();
  };

  Studio.prototype.loop = function () {
    var self = this;
    if (this.raf) return;
    var tick = function () {
      self.raf = null;
      var v = self.video;
      if (!v.paused && !v.ended && v.currentTime >= self.outPt) {
        v.pause();
        v.currentTime = self.outPt;
      }
      self.updateTime();
      if (!v.paused && !v.ended) self.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  };

  Studio.prototype.updatePlayButton = function () {
    var paused = this.video.paused;
    var btn = $(this.root, "[data-play]");
    btn.setAttribute("aria-label", paused ? "Play" : "Pause");
    $(btn, "[data-icon-play]").hidden = !paused;
    $(btn, "[data-icon-pause]").hidden = paused;
  };

  Studio.prototype.updateTime = function () {
    var t = this.video.currentTime || 0;
    $(this.root, "[data-time]").textContent = formatTime(t);
    $(this.root, "[data-total]").textContent = formatTime(this.duration);
    $(this.root, "[data-frame]").textContent = String(Math.floor(t * this.fps + 1e-6));
    if (this.duration) this.playhead.style.left = (t / this.duration) * 100 + "%";
    this.updateRegionVisibility(t);
    this.updateAudioPreview(t);
  };

  /* ------------------------------------------------------------ layout */

  /* Put the overlay exactly over the picture inside the (letterboxed) video box. */
  Studio.prototype.layout = function () {
    var v = this.video;
    var W = this.W || v.videoWidth;
    var H = this.H || v.videoHeight;
    if (W && H) this.stage.style.aspectRatio = W + " / " + H;
    var cw = v.clientWidth;
    var ch = v.clientHeight;
    var vw = v.videoWidth || W;
    var vh = v.videoHeight || H;
    if (!cw || !ch || !vw || !vh) return;
    var scale = Math.min(cw / vw, ch / vh);
    var pw = vw * scale;
    var ph = vh * scale;
    var o = this.overlay.style;
    o.left = v.offsetLeft + (cw - pw) / 2 + "px";
    o.top = v.offsetTop + (ch - ph) / 2 + "px";
    o.width = pw + "px";
    o.height = ph + "px";
    this.pictureHeight = ph;
    this.styleCaption();
    this.watermarkPreview.style.fontSize = Math.max(8, ph * 0.03) + "px";
  };

  /* Size the caption preview as media_pipeline.graph._caption draws it: font size
   * min(H/22, 0.92 W / (0.55 x longest line)) source pixels, a black@0.6 box padded by
   * a third of it, lifted one font size off the bottom. */
  Studio.prototype.styleCaption = function () {
    var ph = this.pictureHeight;
    if (!ph || !this.H || !this.W) return;
    var longest = this.captionText().reduce(function (m, l) { return Math.max(m, l.length); }, 1);
    var size = Math.max(8, Math.min(Math.floor(this.H / 22), Math.floor((this.W * 0.92) / (0.55 * longest))));
    var k = ph / this.H;
    var s = this.captionPreview.style;
    s.fontSize = size * k + "px";
    s.padding = Math.max(2, Math.floor(size / 3)) * k + "px";
    s.bottom = Math.max(4, size) * k + "px";
    s.lineHeight = String(1 + Math.max(1, Math.floor(size / 4)) / size);
  };

  /* A pointer event's position as fractions (0..1) of the picture. */
  Studio.prototype.fraction = function (e) {
    var rect = this.overlay.getBoundingClientRect();
    return {
      fx: clamp((e.clientX - rect.left) / rect.width, 0, 1),
      fy: clamp((e.clientY - rect.top) / rect.height, 0, 1),
    };
  };

  /* ------------------------------------------------------------ timeline & trim */

  Studio.prototype.timeAt = function (clientX) {
    var rect = this.track.getBoundingClientRect();
    return clamp((clientX - rect.left) / rect.width, 0, 1) * this.duration;
  };

  Studio.prototype.bindTimeline = function () {
    var self = this;
    var dragging = null;
    this.track.addEventListener("pointerdown", function (e) {
      if (!self.duration || e.button !== 0) return;
      var handle = e.target.closest("[data-handle]");
      dragging = handle ? handle.dataset.handle : "seek";
      self.track.setPointerCapture(e.pointerId);
      self.video.pause();
      if (handle) handle.focus();
      move(e);
      e.preventDefault();
    });
    var move = function (e) {
      if (!dragging) return;
      var t = self.timeAt(e.clientX);
      if (dragging === "in") self.setIn(t, true);
      else if (dragging === "out") self.setOut(t, true);
      else self.seek(t);
    };
    this.track.addEventListener("pointermove", move);
    var end = function () { dragging = null; };
    this.track.addEventListener("pointerup", end);
    this.track.addEventListener("pointercancel", end);

    [this.handleIn, this.handleOut].forEach(function (handle) {
      handle.addEventListener("keydown", function (e) {
        var which = handle.dataset.handle;
        var cur = which === "in" ? self.inPt : self.outPt;
        var d = e.shiftKey ? 1 : 1 / self.fps;
        var next = null;
        if (e.key === "ArrowLeft" || e.key === "ArrowDown") next = cur - d;
        else if (e.key === "ArrowRight" || e.key === "ArrowUp") next = cur + d;
        else if (e.key === "Home") next = 0;
        else if (e.key === "End") next = self.duration;
        if (next === null) return;
        e.preventDefault();
        if (which === "in") self.setIn(next, true);
        else self.setOut(next, true);
      });
    });
  };

  Studio.prototype.setIn = function (t, seek) {
    var limit = Math.max(0, this.outPt - MIN_CLIP_S);
    this.inPt = r3(clamp(t, 0, limit));
    this.touch();
    this.clearError("trim");
    this.updateTimeline();
    this.updateTrimInputs();
    if (seek) this.seek(this.inPt);
  };

  Studio.prototype.setOut = function (t, seek) {
    var lower = Math.min(this.duration, this.inPt + MIN_CLIP_S);
    this.outPt = r3(clamp(t, lower, this.duration));
    this.touch();
    this.clearError("trim");
    this.updateTimeline();
    this.updateTrimInputs();
    if (seek) this.seek(Math.max(0, this.outPt - 1 / this.fps / 2));
  };

  Studio.prototype.updateTimeline = function () {
    if (!this.duration) return;
    var pct = function (t, d) { return (t / d) * 100 + "%"; };
    var d = this.duration;
    this.rangeEl.style.left = pct(this.inPt, d);
    this.rangeEl.style.width = pct(this.outPt - this.inPt, d);
    this.handleIn.style.left = pct(this.inPt, d);
    // Over the thumbnails, what the trim leaves out is shaded.
    if (this.thumbs) {
      $(this.thumbs, '[data-cut="before"]').style.width = pct(this.inPt, d);
      $(this.thumbs, '[data-cut="after"]').style.left = pct(this.outPt, d);
    }
    this.handleOut.style.left = pct(this.outPt, d);
    this.handleIn.setAttribute("aria-valuemax", String(r3(d)));
    this.handleOut.setAttribute("aria-valuemax", String(r3(d)));
    this.handleIn.setAttribute("aria-valuenow", String(this.inPt));
    this.handleOut.setAttribute("aria-valuenow", String(this.outPt));
    this.handleIn.setAttribute("aria-valuetext", formatTime(this.inPt));
    this.handleOut.setAttribute("aria-valuetext", formatTime(this.outPt));
    $(this.root, "[data-length]").textContent = formatTime(this.outPt - this.inPt);
    if (this.posterSource !== null) {
      this.posterMarker.hidden = false;
      this.posterMarker.style.left = pct(this.posterSource, d);
    } else {
      this.posterMarker.hidden = true;
    }
    this.renderAudioSpans();
    var r = this.regions[this.selected];
    if (r) {
      var s = r.start === null ? 0 : r.start;
      var e = r.end === null ? d : r.end;
      this.regionSpan.hidden = false;
      this.regionSpan.style.left = pct(s, d);
      this.regionSpan.style.width = pct(Math.max(0, e - s), d);
    } else {
      this.regionSpan.hidden = true;
    }
  };

  Studio.prototype.updateTrimInputs = function () {
    this.inInput.value = this.inPt.toFixed(2);
    this.outInput.value = this.outPt.toFixed(2);
    this.inInput.max = String(r3(this.duration));
    this.outInput.max = String(r3(this.duration));
  };

  /* ------------------------------------------------------------ blur regions */

  Studio.prototype.bindOverlay = function () {
    var self = this;
    var drag = null;
    this.overlay.addEventListener("pointerdown", function (e) {
      if (e.button !== 0 || !self.W) return;
      var p = self.fraction(e);
      var box = e.target.closest("[data-region]");
      self.video.pause();
      if (box) {
        var index = parseInt(box.dataset.region, 10);
        self.select(index);
        var r = self.regions[index];
        // A moving region is corrected where it is wrong: the drag sets a keyframe at
        // the playhead (media_pipeline interpolates between keyframes as boxAt does).
        drag = {
          mode: e.target.hasAttribute("data-resize") ? "resize" : "move",
          index: index, fx: p.fx, fy: p.fy,
          x: r.x, y: r.y, width: r.width, height: r.height,
        };
      } else {
        drag = { mode: "draw", fx: p.fx, fy: p.fy };
        self.drawRect.hidden = false;
        self.placeDrawRect(p.fx, p.fy, p.fx, p.fy);
      }
      self.overlay.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    this.overlay.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var p = self.fraction(e);
      if (drag.mode === "draw") {
        self.placeDrawRect(drag.fx, drag.fy, p.fx, p.fy);
        return;
      }
      var r = self.regions[drag.index];
      var dx = Math.round((p.fx - drag.fx) * self.W);
      var dy = Math.round((p.fy - drag.fy) * self.H);
      if (drag.mode === "move") {
        r.x = clamp(drag.x + dx, 0, self.W - r.width);
        r.y = clamp(drag.y + dy, 0, self.H - r.height);
      } else {
        r.width = clamp(drag.width + dx, MIN_REGION_PX * 2, self.W - r.x);
        r.height = clamp(drag.height + dy, MIN_REGION_PX * 2, self.H - r.y);
      }
      self.touch();
      self.placeRegion(drag.index);
      self.updateRegionText(drag.index);
    });
    var finish = function (e) {
      if (!drag) return;
      var d = drag;
      drag = null;
      if (d.mode !== "draw") {
        var moved = self.regions[d.index];
        if (moved && moved.keyframes) self.setKeyframe(d.index, self.video.currentTime || 0);
        return;
      }
      self.drawRect.hidden = true;
      var p = self.fraction(e);
      var x0 = Math.round(Math.min(d.fx, p.fx) * self.W);
      var y0 = Math.round(Math.min(d.fy, p.fy) * self.H);
      var x1 = Math.round(Math.max(d.fx, p.fx) * self.W);
      var y1 = Math.round(Math.max(d.fy, p.fy) * self.H);
      if (x1 - x0 < MIN_REGION_PX * 2 || y1 - y0 < MIN_REGION_PX * 2) {
        self.select(-1); // a click, not a drag
        return;
      }
      self.addRegion({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
    };
    this.overlay.addEventListener("pointerup", finish);
    this.overlay.addEventListener("pointercancel", function () {
      drag = null;
      self.drawRect.hidden = true;
    });
  };

  Studio.prototype.placeDrawRect = function (ax, ay, bx, by) {
    var s = this.drawRect.style;
    s.left = Math.min(ax, bx) * 100 + "%";
    s.top = Math.min(ay, by) * 100 + "%";
    s.width = Math.abs(bx - ax) * 100 + "%";
    s.height = Math.abs(by - ay) * 100 + "%";
  };

  Studio.prototype.addRegion = function (rect) {
    if (this.regions.length >= MAX_REGIONS) {
      this.showError("blur", "At most " + MAX_REGIONS + " regions.");
      return;
    }
    var trimmedIn = this.inPt > 0.0005;
    var trimmedOut = this.outPt < this.duration - 0.0005;
    this.regions.push({
      x: rect.x, y: rect.y, width: rect.width, height: rect.height,
      start: trimmedIn ? this.inPt : null,
      end: trimmedOut ? this.outPt : null,
      whole_frame: false,
      effect: "blur",
      source: "manual",
      keyframes: null,
      box: null,
    });
    this.touch();
    this.clearError("blur");
    this.renderRegions();
    this.select(this.regions.length - 1);
  };

  /* Put region i's current box into its keyframes at time t: the keyframe within half
   * a frame of t is moved, otherwise one is added in time order. */
  Studio.prototype.setKeyframe = function (i, t) {
    var r = this.regions[i];
    if (!r || !r.keyframes) return;
    t = r3(t);
    var key = { t: t, x: r.x, y: r.y, w: r.width, h: r.height };
    var near = 0.5 / (this.fps || 30);
    var at = -1;
    for (var j = 0; j < r.keyframes.length; j++) if (Math.abs(r.keyframes[j].t - t) <= near) at = j;
    if (at >= 0) {
      key.t = r.keyframes[at].t;
      r.keyframes[at] = key;
    } else {
      if (r.keyframes.length >= MAX_KEYFRAMES) {
        this.showFieldError("regions[" + i + "].keyframes", "At most " + MAX_KEYFRAMES + " keyframes a region: move an existing keyframe instead.");
        return;
      }
      r.keyframes.push(key);
      r.keyframes.sort(function (a, b) { return a.t - b.t; });
    }
    this.touch();
    this.updateRegionText(i);
    this.renderKeyTicks();
  };

  /* The selected region's keyframes as ticks on the timeline (click one to go there). */
  Studio.prototype.renderKeyTicks = function () {
    var self = this;
    if (!this.keyTicks) return;
    this.keyTicks.replaceChildren();
    var r = this.regions[this.selected];
    if (!r || !r.keyframes || !this.duration) return;
    r.keyframes.forEach(function (k) {
      var tick = el("button", "timeline-key");
      tick.type = "button";
      tick.style.left = (k.t / self.duration) * 100 + "%";
      tick.title = "Keyframe at " + formatTime(k.t);
      tick.setAttribute("aria-label", "Go to the keyframe at " + formatTime(k.t));
      tick.addEventListener("pointerdown", function (e) { e.stopPropagation(); });
      tick.addEventListener("click", function (e) { e.stopPropagation(); self.video.pause(); self.seek(k.t); });
      self.keyTicks.appendChild(tick);
    });
  };

  /* ------------------------------------------------------------ proposals */

  Studio.prototype.showProposal = function (p, failed) {
    this.proposalStatus.hidden = false;
    var pct = Math.round((p.progress || 0) * 100);
    var busy = p.status === "queued" || p.status === "running";
    if (!busy) pct = 100;
    this.proposalFill.style.width = pct + "%";
    this.proposalStatus.querySelector("[role=progressbar]").setAttribute("aria-valuenow", String(pct));
    this.proposalStatus.classList.toggle("is-failed", !!failed);
    var what = p.kind === "faces" ? "Finding faces" : "Following the box";
    this.proposalMessage.textContent = busy
      ? what + "… " + (p.status === "queued" ? "waiting for a worker" : pct + "%")
      : p.message || "";
    this.proposalMessage.className = "small" + (failed ? " error" : "");
    this.findFacesBtn.disabled = busy && p.kind === "faces";
  };

  Studio.prototype.requestProposal = function (body, region) {
    var self = this;
    this.findFacesBtn.disabled = true;
    fetch(this.proposalsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    })
      .then(function (res) { return res.json().catch(function () { return {}; }).then(function (b) { return { res: res, body: b }; }); })
      .then(function (out) {
        if (out.res.status === 202 && out.body.proposal) {
          self.pollProposal(out.body.proposal.url, region, false, out.body.proposal);
          return;
        }
        var b = out.body || {};
        self.showProposal({ kind: body.kind, status: "failed", message: b.title || ("The request was refused (HTTP " + out.res.status + ").") }, true);
        self.findFacesBtn.disabled = false;
      })
      .catch(function () {
        self.showProposal({ kind: body.kind, status: "failed", message: "The server could not be reached. Try again." }, true);
        self.findFacesBtn.disabled = false;
      });
  };

  /* Follow a proposal until it is ready or failed (once a second). */
  Studio.prototype.pollProposal = function (url, region, quiet, known) {
    var self = this;
    var handle = function (p) {
      if (!p) return;
      var busy = p.status === "queued" || p.status === "running";
      if (!quiet || busy) self.showProposal(p, p.status === "failed");
      if (busy) {
        quiet = false;
        setTimeout(function () { self.pollProposal(url, region, false); }, 1000);
      } else if (p.status === "ready") {
        if (p.kind === "faces") self.showSuggestions(p, quiet);
        else self.applyFollow(p, region);
      }
    };
    if (known) { handle(known); return; }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (b) { handle(b && b.proposal); })
      .catch(function () { setTimeout(function () { self.pollProposal(url, region, quiet); }, 3000); });
  };

  Studio.prototype.followSelected = function () {
    var r = this.regions[this.selected];
    if (!r || r.whole_frame) return;
    this.video.pause();
    var t = this.video.currentTime || 0;
    this.requestProposal({ kind: "follow", box: { t: r3(t), x: r.x, y: r.y, w: r.width, h: r.height } }, r);
  };

  /* The tracker's track becomes the region's motion from the frame it was drawn on
   * (keyframes before that frame are kept); the officer corrects it by dragging. */
  Studio.prototype.applyFollow = function (p, region) {
    var i = this.regions.indexOf(region);
    var track = p.tracks && p.tracks[0];
    if (i < 0 || !track || !track.keyframes.length) return;
    var from = track.keyframes[0].t;
    var before = (region.keyframes || []).filter(function (k) { return k.t < from - 1e-3; });
    var keys = before.concat(track.keyframes.map(function (k) { return { t: k.t, x: k.x, y: k.y, w: k.w, h: k.h }; }));
    if (keys.length > MAX_KEYFRAMES) keys = keys.slice(keys.length - MAX_KEYFRAMES);
    region.keyframes = keys.length > 1 ? keys : null;
    if (!region.keyframes) { region.x = keys[0].x; region.y = keys[0].y; region.width = keys[0].w; region.height = keys[0].h; }
    region.end = track.end;
    region.source = track.source;
    this.touch();
    this.renderRegions();
    this.select(i);
  };

  Studio.prototype.sameTrack = function (a, b) {
    var ka = a.keyframes && a.keyframes[0], kb = b.keyframes && b.keyframes[0];
    return !!(ka && kb && a.source === b.source && Math.abs(ka.t - kb.t) < 1e-3 && ka.x === kb.x && ka.y === kb.y);
  };

  Studio.prototype.showSuggestions = function (p, quiet) {
    var self = this;
    this.clearSuggestions();
    var existing = this.buildPlan().regions;
    (p.tracks || []).forEach(function (track, n) {
      if (existing.some(function (r) { return self.sameTrack(r, track); })) return; // accepted before
      var s = { track: track, score: (p.scores || [])[n], number: n + 1 };
      s.box = el("div", "suggest-box");
      s.box.appendChild(el("span", "blur-box-label", "Face " + s.number));
      self.overlay.insertBefore(s.box, self.drawRect);
      self.suggestions.push(s);
    });
    this.renderSuggestions();
    if (quiet && this.suggestions.length) this.showProposal(p, false);
    this.updateRegionVisibility(this.video.currentTime || 0);
  };

  Studio.prototype.renderSuggestions = function () {
    var self = this;
    this.suggestList.replaceChildren();
    this.suggestions.forEach(function (s) {
      var t = s.track;
      var li = el("li", "suggestion-item");
      var head = el("div", "region-head");
      var show = el("button", "region-select", "Face " + s.number);
      show.type = "button";
      show.title = "Go to where it is first seen";
      show.addEventListener("click", function () { self.video.pause(); self.seek(t.start || 0); });
      head.appendChild(show);
      var span = formatTime(t.start || 0) + "–" + formatTime(t.end === null ? self.duration : t.end);
      head.appendChild(el("span", "region-coords muted small", span + (s.score ? " · " + Math.round(s.score * 100) + "% sure" : "")));
      li.appendChild(head);
      var actions = el("div", "suggestion-actions");
      var accept = el("button", "btn btn-tiny btn-primary", "Accept");
      accept.type = "button";
      accept.setAttribute("aria-label", "Accept face " + s.number);
      accept.addEventListener("click", function () { self.acceptSuggestion(s); });
      var reject = el("button", "btn btn-tiny btn-ghost", "Reject");
      reject.type = "button";
      reject.setAttribute("aria-label", "Reject face " + s.number);
      reject.addEventListener("click", function () { self.dropSuggestion(s); });
      actions.appendChild(accept);
      actions.appendChild(reject);
      li.appendChild(actions);
      s.item = li;
      self.suggestList.appendChild(li);
    });
    this.suggestPanel.hidden = this.suggestions.length === 0;
  };

  Studio.prototype.dropSuggestion = function (s) {
    var i = this.suggestions.indexOf(s);
    if (i < 0) return;
    if (s.box) s.box.remove();
    this.suggestions.splice(i, 1);
    this.renderSuggestions();
  };

  Studio.prototype.acceptSuggestion = function (s) {
    if (this.regions.length >= MAX_REGIONS) {
      this.showError("blur", "At most " + MAX_REGIONS + " regions: delete one or cover several people with one box.");
      return false;
    }
    var r = regionFromPlan(s.track, true);
    this.regions.push(r);
    this.dropSuggestion(s);
    this.touch();
    this.renderRegions();
    this.updateRegionVisibility(this.video.currentTime || 0);
    return true;
  };

  Studio.prototype.acceptAllSuggestions = function () {
    var self = this;
    this.suggestions.slice().forEach(function (s) { self.acceptSuggestion(s); });
  };

  Studio.prototype.clearSuggestions = function () {
    this.suggestions.forEach(function (s) { if (s.box) s.box.remove(); });
    this.suggestions = [];
    this.renderSuggestions();
  };

  Studio.prototype.deleteRegion = function (index) {
    var r = this.regions[index];
    if (r && r.box) r.box.remove();
    this.regions.splice(index, 1);
    this.selected = -1;
    this.touch();
    this.renderRegions();
  };

  Studio.prototype.select = function (index) {
    this.selected = index;
    var self = this;
    this.regions.forEach(function (r, i) {
      if (r.box) r.box.classList.toggle("is-selected", i === index);
      if (r.item) {
        r.item.classList.toggle("is-selected", i === index);
        r.item.querySelector("[data-region-select]").setAttribute("aria-pressed", String(i === index));
      }
    });
    this.updateTimeline();
    this.updateRegionVisibility(this.video.currentTime || 0);
    if (index < 0) self.regionSpan.hidden = true;
    var chosen = this.regions[index];
    if (this.followBtn) this.followBtn.disabled = !chosen || chosen.whole_frame || !this.proposalsUrl;
    this.renderKeyTicks();
  };

  /* Rebuild the region boxes and list (after an add or delete). */
  Studio.prototype.renderRegions = function () {
    var self = this;
    $$(this.overlay, "[data-region]").forEach(function (n) { n.remove(); });
    this.regionList.replaceChildren();
    this.regions.forEach(function (r, i) {
      var box = el("div", "blur-box");
      box.dataset.region = String(i);
      var label = el("span", "blur-box-label", String(i + 1));
      box.appendChild(label);
      var grip = el("span", "blur-box-resize");
      grip.setAttribute("data-resize", "");
      box.appendChild(grip);
      self.overlay.insertBefore(box, self.drawRect);
      r.box = box;
      self.placeRegion(i);
      r.item = self.regionItem(r, i);
      self.regionList.appendChild(r.item);
    });
    this.regionEmpty.hidden = this.regions.length > 0;
    this.select(this.selected < this.regions.length ? this.selected : -1);
  };

  Studio.prototype.regionItem = function (r, i) {
    var self = this;
    var li = el("li", "region-item");
    li.dataset.regionIndex = String(i);
    var head = el("div", "region-head");
    var pick = el("button", "region-select", "Region " + (i + 1));
    pick.type = "button";
    pick.setAttribute("data-region-select", "");
    pick.setAttribute("aria-pressed", "false");
    pick.addEventListener("click", function () {
      self.select(self.selected === i ? -1 : i);
      var start = self.regions[i] && self.regions[i].start;
      if (self.selected === i && start !== null && start !== undefined) self.seek(start);
    });
    head.appendChild(pick);
    var coords = el("span", "region-coords muted small");
    coords.setAttribute("data-region-coords", "");
    head.appendChild(coords);
    var del = el("button", "btn btn-small btn-ghost region-delete", "Delete");
    del.type = "button";
    del.setAttribute("aria-label", "Delete region " + (i + 1));
    del.addEventListener("click", function () { self.deleteRegion(i); });
    head.appendChild(del);
    li.appendChild(head);

    var fields = el("div", "region-fields");
    ["start", "end"].forEach(function (key) {
      fields.appendChild(timeField({
        id: "region-" + i + "-" + key,
        label: key === "start" ? "Start" : "End",
        attr: "data-region-" + key,
        value: r[key],
        placeholder: key === "start" ? "clip start" : "clip end",
        nowLabel: "Set region " + (i + 1) + " " + key + " to now (the playhead)",
        video: self.video,
        onChange: function (n) {
          r[key] = n === null ? null : r3(clamp(n, 0, self.duration));
          self.touch();
          self.clearRegionError(i);
          self.updateTimeline();
          self.updateRegionVisibility(self.video.currentTime || 0);
          return r[key];
        }
      }));
    });
    var wholeLabel = el("label", "check");
    var whole = el("input");
    whole.type = "checkbox";
    whole.checked = r.whole_frame;
    whole.setAttribute("data-region-whole", "");
    whole.addEventListener("change", function () {
      r.whole_frame = whole.checked;
      self.touch();
      self.placeRegion(i);
      self.updateRegionText(i);
    });
    wholeLabel.appendChild(whole);
    wholeLabel.appendChild(document.createTextNode(" Whole frame"));
    fields.appendChild(wholeLabel);
    fields.appendChild(selectField({
      id: "region-" + i + "-effect",
      label: "Effect",
      attr: "data-region-effect",
      options: EFFECTS,
      value: r.effect,
      onChange: function (value) {
        r.effect = value;
        self.touch();
        self.clearRegionError(i);
      }
    }));
    li.appendChild(fields);
    var err = el("p", "field-error");
    err.setAttribute("data-region-error", "");
    li.appendChild(err);
    r.item = li;
    this.updateRegionText(i);
    return li;
  };

  Studio.prototype.placeRegion = function (i) {
    var r = this.regions[i];
    if (!r || !r.box) return;
    var s = r.box.style;
    if (r.whole_frame) {
      s.left = "0"; s.top = "0"; s.width = "100%"; s.height = "100%";
    } else {
      s.left = (r.x / this.W) * 100 + "%";
      s.top = (r.y / this.H) * 100 + "%";
      s.width = (r.width / this.W) * 100 + "%";
      s.height = (r.height / this.H) * 100 + "%";
    }
    r.box.classList.toggle("is-whole", r.whole_frame);
  };

  Studio.prototype.updateRegionText = function (i) {
    var r = this.regions[i];
    if (!r || !r.item) return;
    var text = r.whole_frame ? "whole frame" : r.width + "×" + r.height + " at " + r.x + "," + r.y;
    if (r.keyframes && !r.whole_frame) text += ", moving (" + r.keyframes.length + " keyframes)";
    r.item.querySelector("[data-region-coords]").textContent = text;
  };

  /* Live preview: a region blurs only while the playhead is inside its time range. */
  Studio.prototype.updateRegionVisibility = function (t) {
    var self = this;
    this.regions.forEach(function (r, i) {
      if (!r.box) return;
      if (r.keyframes) {
        var b = boxAt(r.keyframes, t);
        r.x = b.x; r.y = b.y; r.width = b.w; r.height = b.h;
        self.placeRegion(i);
        self.updateRegionText(i);
      }
      var on = (r.start === null || t >= r.start - 1e-3) && (r.end === null || t < r.end);
      r.box.classList.toggle("is-active", on);
      r.box.hidden = !on && i !== self.selected;
    });
    (this.suggestions || []).forEach(function (sg) {
      var tr = sg.track;
      var live = (tr.start === null || t >= tr.start - 1e-3) && (tr.end === null || t < tr.end);
      sg.box.hidden = !live;
      if (!live) return;
      var b = boxAt(tr.keyframes, t);
      var st = sg.box.style;
      st.left = (b.x / self.W) * 100 + "%";
      st.top = (b.y / self.H) * 100 + "%";
      st.width = (b.w / self.W) * 100 + "%";
      st.height = (b.h / self.H) * 100 + "%";
    });
  };

  /* ------------------------------------------------------------ timeline thumbnails */

  /* The sprite's WebVTT index (media_pipeline.graph.SpriteLayout.to_vtt): one cue per
   * thumbnail, "start --> end" then "sprite.jpg#xywh=x,y,w,h" in sheet pixels. */
  function parseSpriteIndex(text) {
    var cues = [];
    var stamp = function (s) {
      var p = s.trim().split(":").map(parseFloat);
      return p.reduce(function (acc, v) { return acc * 60 + v; }, 0);
    };
    var lines = text.split(/\r?\n/);
    for (var i = 0; i + 1 < lines.length; i++) {
      var times = lines[i].split("-->");
      var box = /#xywh=(\d+),(\d+),(\d+),(\d+)\s*$/.exec(lines[i + 1]);
      if (times.length !== 2 || !box) continue;
      cues.push({
        start: stamp(times[0]), end: stamp(times[1]),
        x: +box[1], y: +box[2], w: +box[3], h: +box[4],
      });
    }
    return cues.filter(function (c) { return isFinite(c.start) && isFinite(c.end) && c.w > 0 && c.h > 0; });
  }

  /* Without the sheet or its index (an old version, a failed fetch) the timeline stays
   * plain: the thumbnails only help find the moment. */
  Studio.prototype.loadSprite = function () {
    var self = this;
    var sheet = new Image();
    var index = fetch(this.root.dataset.spriteIndexUrl, { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : ""; });
    var loaded = new Promise(function (done) {
      sheet.onload = function () { done(true); };
      sheet.onerror = function () { done(false); };
    });
    sheet.src = this.root.dataset.spriteUrl;
    Promise.all([index, loaded]).then(function (out) {
      var cues = out[1] ? parseSpriteIndex(out[0] || "") : [];
      if (!cues.length) return;
      self.spriteCues = cues;
      self.spriteSize = { w: sheet.naturalWidth, h: sheet.naturalHeight };
      self.renderThumbs();
    }).catch(function () {});
  };

  /* As many thumbnails as fit the track's width at its height, each showing the
   * frame at the middle of the stretch of timeline it covers. */
  Studio.prototype.renderThumbs = function () {
    var cues = this.spriteCues;
    if (!cues || !this.thumbs) return;
    var d = this.duration || cues[cues.length - 1].end;
    var tw = this.track.clientWidth, th = this.track.clientHeight;
    if (!tw || !th || !d) return;
    var k = th / cues[0].h;
    var slot = cues[0].w * k;
    var n = Math.max(1, Math.ceil(tw / slot));
    var url = 'url("' + this.root.dataset.spriteUrl.replace(/["\\]/g, "\\$&") + '")';
    var size = this.spriteSize.w * k + "px " + this.spriteSize.h * k + "px";
    $$(this.thumbs, ".timeline-thumb").forEach(function (t) { t.remove(); });
    var before = $(this.thumbs, '[data-cut="before"]');
    for (var i = 0; i < n; i++) {
      var t = Math.min(d, ((i + 0.5) * slot / tw) * d);
      var cue = cues[cues.length - 1];
      for (var j = 0; j < cues.length; j++) if (t < cues[j].end) { cue = cues[j]; break; }
      var tile = el("div", "timeline-thumb");
      tile.style.left = i * slot + "px";
      tile.style.width = slot + "px";
      tile.style.backgroundImage = url;
      tile.style.backgroundSize = size;
      tile.style.backgroundPosition = -cue.x * k + "px " + -cue.y * k + "px";
      this.thumbs.insertBefore(tile, before);
    }
    this.thumbs.hidden = false;
    this.track.classList.add("has-thumbs");
  };

  /* ------------------------------------------------------------ audio ranges */

  /* A range from the playhead, AUDIO_RANGE_S long (shorter at the clip's end; moved
   * back when the playhead is at the very end). */
  Studio.prototype.addAudioRange = function (t) {
    this.clearError("audio_ranges");
    if (this.audioRanges.length >= MAX_AUDIO_RANGES) {
      this.showError("audio_ranges", "At most " + MAX_AUDIO_RANGES + " ranges: widen one to cover two.");
      return;
    }
    var d = this.duration;
    var start = clamp(t, 0, d);
    var end = Math.min(d, start + AUDIO_RANGE_S);
    if (end - start < 0.1) start = Math.max(0, end - AUDIO_RANGE_S);
    this.audioRanges.push({ start: r3(start), end: r3(end), effect: "mute" });
    this.touch();
    this.renderAudioRanges();
    // Focus on the new range's name, not its start field: on a phone a focused field
    // would open the keyboard over the picture.
    var names = $$(this.rangeList, ".region-select");
    if (names.length) names[names.length - 1].focus();
  };

  Studio.prototype.deleteAudioRange = function (i) {
    this.audioRanges.splice(i, 1);
    this.touch();
    this.clearError("audio_ranges");
    this.renderAudioRanges();
  };

  Studio.prototype.renderAudioRanges = function () {
    var self = this;
    if (!this.rangeList) return;
    this.rangeList.replaceChildren();
    this.audioRanges.forEach(function (a, i) { self.rangeList.appendChild(self.audioRangeItem(a, i)); });
    this.rangeEmpty.hidden = this.audioRanges.length > 0;
    this.updateAudioRangesState();
    this.renderAudioSpans();
  };

  Studio.prototype.audioRangeItem = function (a, i) {
    var self = this;
    var n = i + 1;
    var li = el("li", "range-item");
    li.dataset.rangeIndex = String(i);
    var head = el("div", "region-head");
    var go = el("button", "region-select", "Range " + n);
    go.type = "button";
    go.title = "Go to its start";
    go.addEventListener("click", function () { self.video.pause(); self.seek(a.start); });
    head.appendChild(go);
    var del = el("button", "btn btn-small btn-ghost region-delete", "Delete");
    del.type = "button";
    del.setAttribute("aria-label", "Delete range " + n);
    del.addEventListener("click", function () { self.deleteAudioRange(i); });
    head.appendChild(del);
    li.appendChild(head);

    var fields = el("div", "region-fields");
    ["start", "end"].forEach(function (key) {
      fields.appendChild(timeField({
        id: "range-" + i + "-" + key,
        label: key === "start" ? "Start" : "End",
        attr: "data-range-" + key,
        value: a[key],
        max: String(r3(self.duration)),
        nowLabel: "Set range " + n + " " + key + " to now (the playhead)",
        video: self.video,
        onChange: function (v) {
          if (v !== null) a[key] = r3(clamp(v, 0, self.duration));
          self.touch();
          li.querySelector("[data-range-error]").textContent = "";
          li.classList.remove("has-error");
          self.renderAudioSpans();
          self.updateAudioPreview(self.video.currentTime || 0);
          return a[key];
        }
      }));
    });
    fields.appendChild(selectField({
      id: "range-" + i + "-effect",
      label: "Effect",
      attr: "data-range-effect",
      options: AUDIO_EFFECTS,
      value: a.effect,
      onChange: function (value) {
        a.effect = value;
        self.touch();
        self.renderAudioSpans();
      }
    }));
    li.appendChild(fields);
    var err = el("p", "field-error");
    err.setAttribute("data-range-error", "");
    li.appendChild(err);
    a.item = li;
    return li;
  };

  /* Ranges are kept while the whole clip is muted or removed, but not used (nor sent). */
  Studio.prototype.updateAudioRangesState = function () {
    if (!this.rangeBox) return;
    var audio = $(this.root, 'input[name="audio"]:checked');
    var on = !audio || audio.value === "keep";
    this.rangeOff.hidden = on || this.audioRanges.length === 0;
    this.updateAudioPreview(this.video.currentTime || 0);
    this.rangeBox.classList.toggle("is-disabled", !on);
    this.addRangeBtn.disabled = !on;
    $$(this.rangeList, "input, select").forEach(function (n) { n.disabled = !on; });
    if (this.audioSpans) this.audioSpans.hidden = !on;
  };

  /* The preview is silent where the render will be: the whole clip when its audio is
   * muted or removed, inside a range otherwise (a bleep is previewed as silence). */
  Studio.prototype.updateAudioPreview = function (t) {
    var audio = $(this.root, 'input[name="audio"]:checked');
    var keep = !audio || audio.value === "keep";
    var covered = !keep || this.audioRanges.some(function (a) { return t >= a.start - 1e-3 && t < a.end; });
    if (this.video.muted !== covered) this.video.muted = covered;
  };

  /* The ranges on the timeline, as bars above the region span. */
  Studio.prototype.renderAudioSpans = function () {
    var self = this;
    if (!this.audioSpans || !this.duration) return;
    this.audioSpans.replaceChildren();
    this.audioRanges.forEach(function (a, i) {
      var bar = el("div", "timeline-audio-range is-" + a.effect);
      bar.setAttribute("data-audio-span", "");
      bar.title = "Range " + (i + 1) + ": " + (a.effect === "bleep" ? "bleeped" : "muted") + " " +
        formatTime(a.start) + "–" + formatTime(a.end);
      bar.style.left = (a.start / self.duration) * 100 + "%";
      bar.style.width = (Math.max(0, a.end - a.start) / self.duration) * 100 + "%";
      self.audioSpans.appendChild(bar);
    });
  };

  /* ------------------------------------------------------------ caption, watermark, poster */

  Studio.prototype.captionText = function () {
    return this.captionLines
      .map(function (i) { return i.value.trim(); })
      .filter(function (s) { return s.length > 0; });
  };

  Studio.prototype.updateCaption = function () {
    var on = this.captionToggle.checked;
    this.captionLines.forEach(function (i) { i.disabled = !on; });
    $(this.root, "[data-caption-fields]").classList.toggle("is-disabled", !on);
    var box = this.captionPreview;
    box.replaceChildren();
    var lines = this.captionText();
    box.hidden = !on || lines.length === 0;
    lines.forEach(function (line) { box.appendChild(el("div", "preview-caption-line", line)); });
    this.styleCaption();
    this.clearError("caption");
  };

  Studio.prototype.updateWatermark = function () {
    this.watermarkPreview.hidden = !(this.watermark && this.watermark.checked);
  };

  Studio.prototype.setPoster = function (t) {
    var label = $(this.root, "[data-poster-label]");
    this.clearError("poster_time");
    if (t === null) {
      this.posterSource = null;
      label.textContent = "Middle of the clip (default)";
      $(this.root, "[data-clear-poster]").hidden = true;
    } else {
      if (t < this.inPt || t >= this.outPt) {
        this.showError("poster_time", "Move the playhead inside the trimmed range first.");
        return;
      }
      this.posterSource = r3(t);
      label.textContent = "Frame at " + formatTime(t) + " (" + formatTime(t - this.inPt) + " into the edited clip)";
      $(this.root, "[data-clear-poster]").hidden = false;
    }
    this.touch();
    this.updateTimeline();
  };

  /* ------------------------------------------------------------ errors */

  Studio.prototype.errorEl = function (name) {
    return this.root.querySelector('[data-error-for="' + name + '"]');
  };

  Studio.prototype.showError = function (name, message) {
    var node = this.errorEl(name);
    if (node) node.textContent = message;
    return !!node;
  };

  Studio.prototype.clearError = function (name) {
    var node = this.errorEl(name);
    if (node) node.textContent = "";
  };

  Studio.prototype.clearRegionError = function (i) {
    var r = this.regions[i];
    if (r && r.item) r.item.querySelector("[data-region-error]").textContent = "";
  };

  Studio.prototype.clearAllErrors = function () {
    var self = this;
    $$(this.root, ".field-error").forEach(function (n) { n.textContent = ""; });
    $$(this.root, ".has-error").forEach(function (n) { n.classList.remove("has-error"); });
    this.regions.forEach(function (_, i) { self.clearRegionError(i); });
    this.saveMessage.textContent = "";
    this.saveMessage.className = "save-message";
  };

  /* Show a server (or local) error next to the control its field names. */
  Studio.prototype.showFieldError = function (field, message) {
    field = field || "";
    var m = /^(?:blur|regions)\[(\d+)\]/.exec(field);
    if (m && this.regions[parseInt(m[1], 10)]) {
      var i = parseInt(m[1], 10);
      var item = this.regions[i].item;
      var what = field.slice(m[0].length).replace(/^\./, "");
      item.querySelector("[data-region-error]").textContent = (what ? what + ": " : "") + message;
      item.classList.add("has-error");
      this.select(i);
      item.scrollIntoView({ block: "nearest" });
      return;
    }
    var a = /^audio_ranges\[(\d+)\]/.exec(field);
    if (a && this.audioRanges[parseInt(a[1], 10)]) {
      var range = this.audioRanges[parseInt(a[1], 10)];
      var part = field.slice(a[0].length).replace(/^\./, "");
      range.item.querySelector("[data-range-error]").textContent = (part ? part + ": " : "") + message;
      range.item.classList.add("has-error");
      range.item.scrollIntoView({ block: "nearest" });
      return;
    }
    var name = field.split(/[.[]/)[0];
    if (name === "trim_start" || name === "trim_end") name = "trim";
    if (!this.showError(name, message)) {
      this.saveMessage.textContent = message;
      this.saveMessage.className = "save-message is-error";
    }
  };

  /* ------------------------------------------------------------ save */

  Studio.prototype.buildPlan = function () {
    var self = this;
    var audio = $(this.root, 'input[name="audio"]:checked');
    var trimmedIn = this.inPt > 0.0005;
    var trimmedOut = this.outPt < this.duration - 0.0005;
    var lines = this.captionText();
    return {
      trim_start: trimmedIn ? r3(this.inPt) : null,
      trim_end: trimmedOut ? r3(this.outPt) : null,
      // Every region as a track, in list order, so "regions[i]" in an error is item i.
      regions: this.regions.map(function (r) {
        var keys = r.whole_frame ? [] : r.keyframes ? r.keyframes : [{
          t: r.start === null ? 0 : r3(r.start), x: r.x, y: r.y, w: r.width, h: r.height,
        }];
        return {
          keyframes: keys,
          start: r.start === null ? null : r3(r.start),
          end: r.end === null ? null : r3(r.end),
          effect: r.effect || "blur",
          source: r.source || "manual",
          whole_frame: !!r.whole_frame,
        };
      }),
      audio: audio ? audio.value : "keep",
      // Only while the audio is kept: muting or removing it covers every range already.
      audio_ranges: (!audio || audio.value === "keep") && this.hasAudio ? this.audioRanges.map(function (a) {
        return { start: r3(a.start), end: r3(a.end), effect: a.effect };
      }) : [],
      caption: this.captionToggle.checked ? { lines: lines } : null,
      poster_time: this.posterSource === null ? null : r3(Math.max(0, this.posterSource - self.inPt)),
      watermark: !!(this.watermark && this.watermark.checked),
    };
  };

  /* Checks the server would make, made first so the message appears at once. */
  Studio.prototype.checkPlan = function (plan) {
    if (this.outPt - this.inPt < MIN_CLIP_S - 1e-6) return ["trim_end", "The edited clip must be at least 1 s long."];
    for (var i = 0; i < plan.regions.length; i++) {
      var b = plan.regions[i];
      if (b.start !== null && b.end !== null && b.end <= b.start) return ["regions[" + i + "].end", "must be after the start"];
      if (b.start !== null && b.start >= this.outPt) return ["regions[" + i + "].start", "is after the end of the edited clip"];
      if (b.end !== null && b.end <= this.inPt) return ["regions[" + i + "].end", "is before the start of the edited clip"];
    }
    for (var j = 0; j < plan.audio_ranges.length; j++) {
      var a = plan.audio_ranges[j];
      if (a.end <= a.start) return ["audio_ranges[" + j + "].end", "must be after the start"];
      if (a.start >= this.outPt) return ["audio_ranges[" + j + "].start", "is after the end of the edited clip"];
      if (a.end <= this.inPt) return ["audio_ranges[" + j + "].end", "is before the start of the edited clip"];
    }
    if (plan.caption && plan.caption.lines.length === 0) return ["caption", "Write at least one line, or untick the caption."];
    if (this.posterSource !== null && (this.posterSource < this.inPt || this.posterSource >= this.outPt)) {
      return ["poster_time", "The poster frame is outside the trimmed clip. Choose it again."];
    }
    return null;
  };

  Studio.prototype.save = function () {
    var self = this;
    this.clearAllErrors();
    var plan = this.buildPlan();
    var problem = this.checkPlan(plan);
    if (problem) {
      this.showFieldError(problem[0], problem[1]);
      return;
    }
    this.saveBtn.disabled = true;
    this.saveBtn.textContent = "Saving…";
    fetch(this.saveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ plan: plan }),
    })
      .then(function (res) {
        return res.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
          return { res: res, body: body };
        });
      })
      .then(function (out) {
        var res = out.res;
        var body = out.body || {};
        if (res.status === 201 || res.ok) {
          var v = body.version || {};
          self.markClean();
          self.saveMessage.textContent = "Version " + (v.number || "") + " saved. Rendering it now…";
          self.saveMessage.className = "save-message is-ok";
          document.dispatchEvent(new CustomEvent("clip:poll"));
          return;
        }
        var title = body.title || ("The version could not be saved (HTTP " + res.status + ").");
        if (body.detail && body.detail !== title && !body.field) title += ": " + body.detail;
        if (res.status === 422 && body.field) {
          self.showFieldError(body.field, title);
          self.saveMessage.textContent = "Fix the marked field and save again.";
          self.saveMessage.className = "save-message is-error";
        } else {
          self.saveMessage.textContent = title;
          self.saveMessage.className = "save-message is-error";
        }
      })
      .catch(function () {
        self.saveMessage.textContent = "The server could not be reached. Your edits are still here; try again.";
        self.saveMessage.className = "save-message is-error";
      })
      .then(function () {
        self.saveBtn.disabled = false;
        self.saveBtn.textContent = "Save as new version";
      });
  };

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-studio]");
    if (root) window.tattletaleStudio = new Studio(root);
  });
})();
