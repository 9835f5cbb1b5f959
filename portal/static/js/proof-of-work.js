// The tip and reply forms' proof of work: a Web Worker solves the challenge the
// server put in the form while the visitor types, and the form is sent with the
// counter it found. Without this script (or a browser without workers or
// crypto.subtle) the form is sent as it is and the server applies a stricter limit.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!window.Worker || !window.crypto || !window.crypto.subtle || !script) return;
  document.querySelectorAll("form[data-pow-bits]").forEach(function (form) {
    var challenge = form.querySelector("input[name=pow_challenge]");
    var solution = form.querySelector("input[name=pow_solution]");
    var status = form.querySelector(".pow-status");
    if (!challenge || !solution) return;
    var state = "solving";
    var waiting = false;
    var worker = new Worker(script.dataset.worker);
    function send() {
      waiting = false;
      form.submit();
    }
    worker.onmessage = function (event) {
      worker.terminate();
      if (event.data.counter !== undefined) {
        solution.value = event.data.counter;
        form.dataset.powSolved = "true";
      }
      state = "done";
      if (waiting) send();
    };
    worker.onerror = function () {
      // Sent without a solution: the stricter limit, never a lost tip.
      state = "done";
      if (waiting) send();
    };
    worker.postMessage({ challenge: challenge.value, bits: Number(form.dataset.powBits) });
    var files = form.querySelector("input[type=file]");
    form.addEventListener("submit", function (event) {
      if (state === "done") return;
      // With files chosen the page's uploader sends the form itself (tip-upload.js,
      // with progress): not held back here, it goes with whatever was solved by now
      // (if nothing, under the stricter limit, as without JavaScript).
      if (files && files.files && files.files.length) return;
      event.preventDefault();
      waiting = true;
      // The page's language comes with the page (data-waiting): no inline script.
      if (status) status.textContent = status.dataset.waiting || "Sending in a moment…";
    });
  });
})();
