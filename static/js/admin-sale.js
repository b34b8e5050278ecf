/* The sale form in the admin: a live preview of the countdown shoppers will see, from the
   start, the duration or end, and the waiting room's lead time. Times are the shop's (UTC). */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var preview = document.querySelector("[data-sale-preview]");
    if (!preview) return;
    var offset = Number(preview.dataset.nowMs) - Date.now();
    var $ = function (id) { return document.getElementById(id); };
    var units = { s: 1, m: 60, h: 3600, d: 86400 };

    function parseLocal(value) {
      if (!value) return null;
      var t = Date.parse(value.replace(" ", "T") + (value.length <= 16 ? ":00Z" : "Z"));
      return isNaN(t) ? null : t;
    }
    function parseDuration(text) {
      var m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(text || "");
      return m ? Number(m[1]) * units[m[2] || "s"] * 1000 : null;
    }
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function span(ms) {
      var s = Math.max(0, Math.round(ms / 1000));
      var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
      var out = (d ? d + " d " : "") + (d || h ? pad(h) + ":" : "") + pad(m) + ":" + pad(s % 60);
      return out;
    }
    function utc(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

    function render() {
      var now = Date.now() + offset;
      var start = $("id_start_time") ? parseLocal($("id_start_time").value) : Number(preview.dataset.startMs) || null;
      var duration = $("id_duration") ? parseDuration($("id_duration").value) : null;
      var end = duration && start ? start + duration
        : $("id_end_time") ? parseLocal($("id_end_time").value) : Number(preview.dataset.endMs) || null;
      var lead = $("id_pre_queue_minutes") ? Number($("id_pre_queue_minutes").value) || 0 : null;
      if (!start) { preview.textContent = "Set a start to see the countdown shoppers will see."; return; }
      var text;
      if (now < start) text = "Shoppers see: “Starts in " + span(start - now) + "” (starts " + utc(start) + ").";
      else if (!end || now < end) text = "Shoppers see: “Live now" + (end ? ", ends in " + span(end - now) : "") + "”.";
      else text = "Shoppers see: “Ended”.";
      if (end && end > start) text += " Runs " + span(end - start) + ", until " + utc(end) + ".";
      else if (end) text += " The end must come after the start.";
      if (lead != null && now < start) text += " The waiting room opens " + lead + " min before the start.";
      preview.textContent = text;
    }
    render();
    setInterval(render, 1000);
    document.addEventListener("input", render);
  });
})();
