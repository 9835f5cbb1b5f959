// Picks the rendition size for the screen: the smallest web rendition at least as
// tall as the player will be drawn (in device pixels), so a phone on mobile data does
// not download 1080p. Without JavaScript the page's default source (720p) plays.
(function () {
  "use strict";
  function pick(video) {
    var sources = Array.prototype.slice.call(video.querySelectorAll("source"));
    if (sources.length < 2) return;
    var needed = video.clientHeight * (window.devicePixelRatio || 1);
    sources.sort(function (a, b) {
      return Number(a.dataset.height) - Number(b.dataset.height);
    });
    var chosen = sources[sources.length - 1];
    for (var i = 0; i < sources.length; i++) {
      if (Number(sources[i].dataset.height) >= needed) { chosen = sources[i]; break; }
    }
    if (video.currentSrc && video.currentSrc.indexOf(chosen.getAttribute("src")) !== -1) return;
    // The chosen source first: browsers play the first one they can.
    video.insertBefore(chosen, video.firstChild);
    video.load();
  }
  document.querySelectorAll(".player video").forEach(pick);
})();
