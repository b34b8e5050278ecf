/* Proof of work for joining the waiting room: find a nonce such that
   SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits. Runs off the main
   thread; hashes in batches because crypto.subtle.digest is asynchronous. */
"use strict";

function leadingZeroBits(bytes) {
  var bits = 0;
  for (var i = 0; i < bytes.length; i++) {
    var b = bytes[i];
    if (b === 0) { bits += 8; continue; }
    while ((b & 0x80) === 0) { bits++; b <<= 1; }
    return bits;
  }
  return bits;
}

self.onmessage = async function (event) {
  var challenge = event.data.challenge;
  var difficulty = event.data.difficulty;
  var encoder = new TextEncoder();
  var started = performance.now();
  var batch = 512;
  for (var base = 0; ; base += batch) {
    var digests = [];
    for (var n = base; n < base + batch; n++) {
      digests.push(crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + n)));
    }
    var results = await Promise.all(digests);
    for (var i = 0; i < results.length; i++) {
      if (leadingZeroBits(new Uint8Array(results[i])) >= difficulty) {
        self.postMessage({
          nonce: String(base + i),
          tries: base + i + 1,
          ms: performance.now() - started,
        });
        return;
      }
    }
  }
};
