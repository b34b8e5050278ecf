/* The shop's clock: measures this device's offset from the server once on load (the
   round-trip halved), so every countdown follows the server, not the visitor's clock. */
(function () {
  "use strict";
  var offsetMs = 0;
  var measured = false;
  var listeners = [];

  function sample() {
    var sentAt = Date.now();
    var t0 = performance.now();
    return fetch("/time", { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        var rtt = performance.now() - t0;
        return { rtt: rtt, offset: body.now_ms - (sentAt + rtt / 2) };
      });
  }

  // Three samples, keep the one with the shortest round trip (the least noisy).
  var ready = sample()
    .then(function (a) { return sample().then(function (b) { return [a, b]; }); })
    .then(function (xs) { return sample().then(function (c) { return xs.concat([c]); }); })
    .then(function (xs) {
      xs.sort(function (p, q) { return p.rtt - q.rtt; });
      offsetMs = xs[0].offset;
      document.documentElement.dataset.clockOffsetMs = String(Math.round(offsetMs));
    })
    .catch(function () { /* keep the device clock; countdowns still work */ })
    .then(function () { measured = true; });

  function now() { return Date.now() + offsetMs; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // "2 days 03:04:05", "03:04:05" or "04:05".
  function formatDuration(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    var days = Math.floor(total / 86400);
    var h = Math.floor((total % 86400) / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var clock = (h || days ? pad(h) + ":" : "") + pad(m) + ":" + pad(s);
    return days ? days + (days === 1 ? " day " : " days ") + clock : clock;
  }

  function formatWait(seconds) {
    if (seconds == null || !isFinite(seconds)) return "–";
    if (seconds < 60) return "less than a minute";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return "about " + minutes + (minutes === 1 ? " minute" : " minutes");
    var hours = Math.floor(minutes / 60);
    return "about " + hours + " h " + (minutes % 60) + " min";
  }

  // The wait to show, given the one shown now and a new estimate: a change within 15 % keeps
  // the shown figure, so the text does not flicker between two neighbouring values as the
  // estimate wobbles; under a minute, or a bigger change, shows the new one at once.
  function steadyWait(shown, next) {
    if (next == null || !isFinite(next)) return shown == null ? next : shown;
    if (shown == null || !isFinite(shown) || next < 60 || shown < 60) return next;
    return Math.abs(next - shown) <= 0.15 * shown ? shown : next;
  }

  // Every [data-countdown] on the page: "Starts in", "Live now", "Ended".
  function renderCountdowns() {
    // Until the offset is measured the device's clock could be hours off: keep the
    // server-rendered start time and hold page logic (expiry, phase switches) back.
    if (!measured) return;
    var t = now();
    document.querySelectorAll("[data-countdown]").forEach(function (node) {
      var starts = Number(node.dataset.startsMs);
      var ends = Number(node.dataset.endsMs);
      var status = node.dataset.status;
      var label = node.querySelector("[data-countdown-label]");
      var value = node.querySelector("[data-countdown-value]");
      var phase;
      if (status === "CANCELLED") phase = "cancelled";
      else if (status === "COMPLETED" || t >= ends) phase = "ended";
      else if (node.dataset.soldOut === "1") phase = "sold_out";
      else if (t < starts) phase = "scheduled";
      else phase = "live";
      node.dataset.phase = phase;
      if (phase === "scheduled") {
        label.textContent = "Starts in";
        value.textContent = formatDuration(starts - t);
      } else if (phase === "live") {
        label.textContent = "Live now";
        value.textContent = "ends in " + formatDuration(ends - t);
      } else {
        label.textContent = { ended: "Ended", cancelled: "Cancelled", sold_out: "Sold out" }[phase];
        value.textContent = "";
      }
    });
    listeners.forEach(function (fn) { fn(t); });
  }

  function onTick(fn) { listeners.push(fn); }

  document.addEventListener("DOMContentLoaded", function () {
    renderCountdowns();
    ready.then(function () {
      renderCountdowns();
      setInterval(renderCountdowns, 250);
    });
  });

  window.Drop = {
    now: now,
    ready: ready,
    onTick: onTick,
    formatDuration: formatDuration,
    formatWait: formatWait,
    steadyWait: steadyWait,
    render: renderCountdowns,
  };
})();
