// Solves the server's proof-of-work challenge (portal/services/challenges.py) off the
// page's thread: finds a decimal counter such that SHA-256 of "challenge:counter"
// starts with `bits` zero bits. Digests are asked for in batches, since each
// crypto.subtle call is asynchronous and one at a time would mostly wait.
"use strict";

var BATCH = 256;

function leadingZeroBits(bytes) {
  var bits = 0;
  for (var i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) { bits += 8; continue; }
    return bits + Math.clz32(bytes[i]) - 24;
  }
  return bits;
}

function digest(text) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

self.onmessage = function (event) {
  var challenge = event.data.challenge;
  var bits = event.data.bits;
  var start = 0;
  function batch() {
    var counters = [];
    var digests = [];
    for (var n = start; n < start + BATCH; n++) {
      counters.push(n);
      digests.push(digest(challenge + ":" + n));
    }
    start += BATCH;
    Promise.all(digests).then(function (results) {
      for (var i = 0; i < results.length; i++) {
        if (leadingZeroBits(new Uint8Array(results[i])) >= bits) {
          self.postMessage({ counter: String(counters[i]) });
          return;
        }
      }
      batch();
    }, function (error) {
      self.postMessage({ error: String(error) });
    });
  }
  batch();
};
