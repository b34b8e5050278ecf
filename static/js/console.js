// The operator console: figures over the WebSocket each second (polling as a fallback),
// rates derived from consecutive figures, a 5-minute chart, and the audited controls.
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root) return;
  var history = []; // {t, taken, joins}
  var lastFigures = JSON.parse(document.getElementById("initial-figures").textContent);
  var offsetMs = 0;

  function set(name, value) {
    var el = root.querySelector('[data-f="' + name + '"]');
    if (el && el.textContent !== String(value)) el.textContent = value;
  }
  function taken(f) { return (f.units_sold || 0) + (f.units_held || 0); }
  function joins(f) { return (f.queue_pre || 0) + (f.queue_main || 0) + (f.queue_back || 0) + (f.now_serving || 0); }

  function render(f) {
    offsetMs = f.server_ms - Date.now();
    var now = Date.now();
    history.push({ t: now, taken: taken(f), joins: joins(f) });
    while (history.length && history[0].t < now - 300000) history.shift();
    var prev = history.length > 1 ? history[history.length - 2] : null;
    var dt = prev ? (now - prev.t) / 1000 : 0;
    set("phase", f.phase + (f.admission_paused ? " · admission paused" : ""));
    set("units_sold", f.units_sold);
    set("units_held", f.units_held);
    set("units_left", f.units_left === null ? "–" : f.units_left);
    set("revenue", f.revenue);
    set("sales_per_second", prev && dt > 0 ? Math.max(0, (taken(f) - prev.taken) / dt).toFixed(1) : "0");
    set("joins_per_second", prev && dt > 0 ? Math.max(0, (joins(f) - prev.joins) / dt).toFixed(1) : "0");
    set("queue_pre", f.queue_pre);
    set("queue_main", f.queue_main);
    set("queue_back", f.queue_back);
    set("now_serving", f.now_serving);
    set("active", f.active);
    set("no_shows", f.no_shows);
    set("rates", (f.measured_rate === null ? "–" : f.measured_rate) + " / " + f.configured_rate);
    set("expected_wait", f.expected_wait_seconds);
    set("pay_succeeded", f.payments.succeeded || 0);
    set("pay_declined", f.payments.declined || 0);
    set("pay_retried", (f.payments.timeout || 0) + (f.payments.error || 0));
    set("dead_letters_open", f.dead_letters_open);
    var states = Object.keys(f.breaker).map(function (k) { return k + ": " + f.breaker[k]; });
    set("breaker", states.join(", ") || "closed");
    set("bots_flagged", f.bots_flagged);
    set("bots_back_of_queue", f.bots_back_of_queue);
    set("bots_blocked", f.bots_blocked);
    var audit = f.last_reconcile;
    set("last_reconcile", !audit ? "not yet" :
      (audit.corrections ? audit.corrections + " corrected" : "clean") + " · " +
      Math.max(0, Math.round((f.server_ms / 1000) - audit.at)) + " s ago");
    lastFigures = f;
    draw();
  }

  function countdown() {
    var ms = lastFigures.starts_ms - (Date.now() + offsetMs);
    if (ms <= 0) { set("countdown", "started"); return; }
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    set("countdown", "starts in " + (h ? h + "h " : "") + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0"));
  }

  function draw() {
    var canvas = document.getElementById("sales-chart");
    if (!canvas || !canvas.getContext) return;
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    var rates = [];
    for (var i = 1; i < history.length; i++) {
      var dt = (history[i].t - history[i - 1].t) / 1000;
      rates.push({ t: history[i].t, r: dt > 0 ? Math.max(0, (history[i].taken - history[i - 1].taken) / dt) : 0 });
    }
    var max = Math.max(1, Math.max.apply(null, rates.map(function (p) { return p.r; }).concat([1])));
    var start = Date.now() - 300000;
    ctx.strokeStyle = "#264b5d";
    ctx.lineWidth = 2;
    ctx.beginPath();
    rates.forEach(function (p, idx) {
      var x = ((p.t - start) / 300000) * w, y = h - (p.r / max) * (h - 14) - 2;
      if (idx === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.fillText("peak " + max.toFixed(1) + " units/s (last 5 min)", 6, 12);
  }

  var polling = null;
  function poll() {
    fetch(root.dataset.figuresUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (f) { if (f) render(f); })
      .catch(function () {});
  }
  function startPolling() {
    if (!polling) polling = setInterval(poll, 2000);
    set("link", "polling");
  }
  function connect() {
    var ws;
    try { ws = new WebSocket(root.dataset.ws); } catch (e) { startPolling(); return; }
    ws.onopen = function () {
      set("link", "live");
      if (polling) { clearInterval(polling); polling = null; }
    };
    ws.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === "figures") render(msg.figures);
    };
    ws.onclose = function () { startPolling(); setTimeout(connect, 5000); };
  }

  function control(name) {
    var body = {};
    if (name === "cancel" && !window.confirm("Cancel this sale? Shoppers can no longer buy.")) return;
    if (name === "rate") body.rate = parseInt(document.getElementById("rate-input").value, 10);
    var token = root.querySelector('input[name="csrfmiddlewaretoken"]').value;
    fetch(root.dataset.controlUrl.replace("CONTROL", name), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(body),
    })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        document.getElementById("control-status").textContent = res.ok ? "Done: " + name : "Refused: " + res.body.detail;
        if (res.ok) render(res.body);
      });
  }
  root.querySelectorAll("button[data-control]").forEach(function (b) {
    b.addEventListener("click", function () { control(b.dataset.control); });
  });

  render(lastFigures);
  setInterval(countdown, 250);
  connect();
})();
