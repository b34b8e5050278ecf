/* The waiting room page. Joins (after a proof of work done in a Web Worker), then follows the
   queue cheaply: the shopper's rank is fixed, the sale's "now serving" figure comes from the
   WebSocket broadcast (or, when the socket fails, from polling the public now_serving
   endpoint), and the page computes its own position and wait. It asks the server for the
   admission once its rank is reached, then buys with the admission token. */
(function () {
  "use strict";
  var root = document.querySelector("[data-queue]");
  if (!root) return;
  var Drop = window.Drop;
  var d = root.dataset;
  var saleId = d.saleId;
  var api = d.api;
  var shopperToken = d.token;
  var starts = Number(d.startsMs);
  var ends = Number(d.endsMs);
  var opens = Number(d.queueOpensMs);
  var $ = function (sel) { return root.querySelector(sel); };
  var storeKey = "drop:" + saleId + ":";
  var baseTitle = document.title;
  var favicon = document.querySelector('link[rel="icon"]');
  var baseFavicon = favicon ? favicon.href : null;

  var q = {
    state: "loading",
    rank: null,
    nowServing: null,
    rate: Number(d.admissionRate) || 1,
    unitsLeft: null,
    firstPosition: null,
    serverEta: null, // the server's estimate (seconds) and when it came, for a place
    serverEtaAt: 0, // without a rank yet (drawn at the start)
    shownEta: null,
    admission: null, // {token, expiresMs}
    askingPosition: false,
    nextPositionAskMs: 0,
    positionSeenMs: 0, // when the server last told this page its place (join, /position, socket)
    socket: null,
    polling: false,
  };

  function show(state) {
    var was = q.state;
    q.state = state;
    root.dataset.state = state;
    root.querySelectorAll("[data-show]").forEach(function (node) {
      node.classList.toggle("on", node.dataset.show === state);
    });
    var turn = state === "admitted";
    document.title = turn ? "It's your turn! · " + baseTitle : state === "sold_out" ? "Sold out · " + baseTitle : baseTitle;
    if (favicon) favicon.href = turn ? d.faviconTurn : baseFavicon;
    if (turn && was !== "admitted") alertTurn("It's your turn", "You can buy now. Your turn lasts a couple of minutes.");
  }

  // ---- alerts: the tab's title and icon always; a sound and a notification if asked -----
  var alertsOn = false;
  try { alertsOn = localStorage.getItem("drop:alerts") === "1"; } catch (e) {}

  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      var ctx = new Ctx();
      [0, 0.25].forEach(function (at) {
        var osc = ctx.createOscillator();
        var gain = ctx.createGain();
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.15, ctx.currentTime + at);
        gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.2);
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.2);
      });
    } catch (e) {}
  }

  function alertTurn(title, body) {
    if (!alertsOn) return;
    beep();
    if (window.Notification && Notification.permission === "granted" && document.hidden) {
      try { new Notification(title, { body: body, tag: "drop-" + saleId }); } catch (e) {}
    }
  }

  function renderAlertToggle() {
    var button = $("[data-alert-toggle]");
    button.setAttribute("aria-pressed", alertsOn ? "true" : "false");
    button.textContent = alertsOn ? "Alerts on: sound and notification" : "Alert me when it's my turn";
  }

  $("[data-alert-toggle]").addEventListener("click", function () {
    alertsOn = !alertsOn;
    try { localStorage.setItem("drop:alerts", alertsOn ? "1" : "0"); } catch (e) {}
    // The browser asks for permission only now, on the shopper's own click.
    if (alertsOn && window.Notification && Notification.permission === "default") {
      Notification.requestPermission().catch(function () {});
    }
    renderAlertToggle();
  });
  renderAlertToggle();

  function connection(text) { $("[data-connection]").textContent = text || ""; }

  function fail(text) {
    $("[data-error-message]").textContent = text || "Something went wrong. Please try again.";
    show("error");
  }

  function call(method, path, body, token) {
    var headers = { Accept: "application/json" };
    if (token !== null) headers.Authorization = "Bearer " + (token || shopperToken);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var extra = arguments[4] || {};
    Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });
    return fetch(api + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (json) {
        return { status: r.status, body: json || {} };
      });
    });
  }

  function epochMs(value) {
    if (value == null) return null;
    if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
    var n = Number(value);
    if (!isNaN(n)) return n < 1e12 ? n * 1000 : n;
    return Date.parse(value);
  }

  // ---- joining -------------------------------------------------------------------------
  function solve(challenge, difficulty) {
    return new Promise(function (resolve, reject) {
      if (!window.Worker || !window.crypto || !window.crypto.subtle) {
        reject(new Error("This browser cannot do the anti-bot check (it needs a secure connection)."));
        return;
      }
      var worker = new Worker(d.powWorker);
      worker.onmessage = function (e) { worker.terminate(); resolve(e.data); };
      worker.onerror = function () { worker.terminate(); reject(new Error("The anti-bot check failed.")); };
      worker.postMessage({ challenge: challenge, difficulty: difficulty });
    });
  }

  function join() {
    if (Drop.now() < opens) {
      show("before-open");
      // Spread the opening second over a couple of seconds.
      setTimeout(join, opens - Drop.now() + Math.random() * 2000);
      return;
    }
    show("joining");
    call("GET", "/challenge", undefined, null)
      .then(function (res) {
        if (res.status === 404) return { website: "" };
        if (res.status !== 200) throw new Error(res.body.detail || "Could not start the anti-bot check.");
        return solve(res.body.challenge, res.body.difficulty).then(function (solution) {
          root.dataset.powMs = String(Math.round(solution.ms));
          return { challenge: res.body.challenge, nonce: solution.nonce, website: "" };
        });
      })
      .then(function (body) { return call("POST", "/waiting_room", body); })
      .then(function (res) {
        if (res.status === 200 || res.status === 201) return placed(res.body);
        if (res.status === 425 || (res.status === 403 && res.body.error === "room_not_open")) {
          var at = epochMs(res.body.opens_at) || opens;
          opens = Math.max(at, Drop.now() + 1000);
          return join();
        }
        if (res.status === 401) { window.location.reload(); return; }
        if (res.body.error === "purchase_limit_reached") return already(res.body.order_url);
        if (res.body.error === "sale_ended") return show("ended");
        if (res.status === 410 || res.body.status === "sold_out") return show("sold_out");
        if (res.status === 429) { setTimeout(join, 2000 + Math.random() * 3000); return; }
        fail(res.body.detail || "Could not join the waiting room (" + res.status + ").");
      })
      .catch(function (err) { fail(err.message); });
  }

  // ---- following the queue -------------------------------------------------------------
  function placed(body) {
    q.positionSeenMs = Drop.now();
    if (body.admission_token) {
      return admitted(body.admission_token, body.admission_expires_at);
    }
    if (body.status === "sold_out") return show("sold_out");
    if (body.status === "expired" && body.admission_used) return already(body.order_url);
    if (body.status === "expired") {
      if (body.order_id && body.units_held === 0) {
        // The order this turn bought ended unpaid (declined or expired): queue again.
        $("[data-expired-message]").innerHTML =
          "<strong>Your order was not paid.</strong> Its unit went back on sale; join again to buy while units remain.";
      }
      return show("expired");
    }
    if (body.status === "ended") return show("ended");
    // Before the start a pre-queue place has no rank yet (0): it is drawn at the start.
    q.rank = body.rank ? Number(body.rank) : null;
    if (body.now_serving != null) q.nowServing = Math.max(q.nowServing || 0, Number(body.now_serving));
    if (body.position != null && q.rank != null) firstPositionKeep(Number(body.position));
    if (body.status === "ready") {
      // Ready, but the admission was already handed out (another tab or device).
      return fail("It is your turn, and your admission was opened in another tab or window: buy there. It expires in a couple of minutes if unused.");
    }
    if (body.estimated_wait_seconds != null) {
      q.serverEta = Number(body.estimated_wait_seconds);
      q.serverEtaAt = Drop.now();
    }
    if (q.state !== "waiting") show("waiting");
    renderWaiting();
    follow();
  }

  function already(orderUrl) {
    var link = $("[data-order-link]");
    if (orderUrl) link.href = orderUrl;
    else {
      // Ask which order it is (GET /api/v1/flash_sales/<id>/order).
      call("GET", "/order").then(function (res) {
        if (res.status === 200 && res.body.order) link.href = res.body.order.order_url;
      }).catch(function () {});
    }
    return show("already");
  }

  function position() {
    if (q.rank == null || q.nowServing == null) return null;
    return Math.max(0, q.rank - q.nowServing);
  }

  // The estimate: with a rank, the place ahead at the sale's admission rate (the server's
  // smoothed, bounded figure) plus the time until the start; without one yet, the server's
  // last estimate counting down. Either way shown through Drop.steadyWait, so the text does
  // not flicker between neighbouring values.
  function currentWait(t, pos) {
    if (pos != null) {
      var eta = pos / Math.max(q.rate, 0.001);
      return t < starts ? eta + (starts - t) / 1000 : eta;
    }
    if (q.serverEta != null) return Math.max(0, q.serverEta - (t - q.serverEtaAt) / 1000);
    return t < starts ? (starts - t) / 1000 : null;
  }

  function renderWaiting() {
    if (q.state !== "waiting") return;
    var t = Drop.now();
    var pos = position();
    var figure = $("[data-position]");
    figure.textContent =
      q.rank == null ? (t < starts ? "Drawn at the start" : "…") : pos === 0 ? "You're next" : pos.toLocaleString();
    figure.classList.toggle("figure-text", q.rank == null || pos === 0);
    q.shownEta = Drop.steadyWait(q.shownEta, currentWait(t, pos));
    var eta = q.shownEta;
    $("[data-eta]").textContent = pos === 0 ? "any moment now" : Drop.formatWait(eta);
    $("[data-starts-in]").textContent = t < starts ? "in " + Drop.formatDuration(starts - t) : "started";
    $("[data-before-start-note]").hidden = t >= starts;
    $("[data-units-left]").textContent = q.unitsLeft == null ? "–" : q.unitsLeft.toLocaleString();
    document.title = (pos != null ? (pos === 0 ? "You're next · " : "#" + pos.toLocaleString() + " in line · ") : "") + baseTitle;
    // Screen readers hear the place now and then, not at every tick of the release.
    if (pos != null && t - (q.announcedAt || 0) > 30000) {
      q.announcedAt = t;
      $("[data-announce]").textContent = pos === 0
        ? "You are next in line."
        : "You are number " + pos.toLocaleString() + " in line. Estimated wait " + Drop.formatWait(eta) + ".";
    }
    if (pos != null) {
      firstPositionKeep(pos);
      var done = q.firstPosition ? Math.round(100 * (1 - pos / q.firstPosition)) : 100;
      $("[data-progress-bar]").style.width = done + "%";
      $("[data-progress]").setAttribute("aria-valuenow", String(done));
    }
  }

  // The progress bar measures from the first position this shopper saw for this rank, kept
  // in localStorage so a reload (or a new tab) does not start it again from zero.
  function firstPositionKeep(pos) {
    var k = storeKey + "first:" + q.rank;
    if (q.firstPosition == null) {
      try { q.firstPosition = Number(localStorage.getItem(k)) || null; } catch (e) {}
    }
    if (q.firstPosition == null || q.firstPosition < pos) {
      q.firstPosition = pos;
      try { localStorage.setItem(k, String(pos)); } catch (e) {}
    }
  }

  function onSale(msg) {
    if (msg.now_serving != null) q.nowServing = Math.max(q.nowServing || 0, Number(msg.now_serving));
    if (msg.admission_rate) q.rate = Number(msg.admission_rate);
    if (msg.units_left != null) q.unitsLeft = Number(msg.units_left);
    var phase = msg.phase || msg.status;
    if (phase === "sold_out" && q.state !== "buying") return show("sold_out");
    if ((phase === "ended" || phase === "cancelled") && q.state !== "buying") return show("ended");
    maybeAskPosition();
    renderWaiting();
  }

  // The page asks the server about itself (/position) only when it believes its turn has
  // come (its rank reached, or the start, for a place drawn then), again after a pause if the
  // server says "not yet", and otherwise once a minute as a fallback (the one request a
  // waiting shopper costs the origin; now_serving is public and cached by nginx or a CDN).
  var POSITION_FALLBACK_MS = 60000;

  function maybeAskPosition() {
    if (q.state !== "waiting" || q.askingPosition) return;
    var t = Drop.now();
    var drawn = q.rank == null && t >= starts;
    var turn = drawn || position() === 0;
    var fallback = t - q.positionSeenMs >= POSITION_FALLBACK_MS;
    if (!(turn || fallback) || t < q.nextPositionAskMs) return;
    // The whole crowd learns its drawn rank at the start: spread that over a few seconds (a
    // shopper admitted meanwhile hears it over the socket). A reached turn asks at once.
    askPosition(false, drawn ? 5000 : 500);
  }

  function askPosition(force, spreadMs) {
    if (q.askingPosition && !force) return;
    q.askingPosition = true;
    // Jitter so a whole batch does not ask in the same millisecond.
    setTimeout(function () {
      // The admission may have come over the socket meanwhile: nothing left to ask.
      if (q.state !== "waiting") { q.askingPosition = false; return; }
      call("GET", "/waiting_room/position")
        .then(function (res) {
          q.askingPosition = false;
          q.nextPositionAskMs = Drop.now() + 2000 + Math.random() * 2000;
          q.positionSeenMs = Drop.now();
          if (res.status === 200) return placed(res.body);
          if (res.status === 404) return join();
          if (res.body.error === "sale_ended") return show("ended");
          if (res.status === 401) return window.location.reload();
        })
        .catch(function () {
          q.askingPosition = false;
          q.nextPositionAskMs = Drop.now() + 3000;
          q.positionSeenMs = Drop.now(); // the minute's fallback waits a minute again
        });
    }, Math.random() * (spreadMs || 500));
  }

  function follow() {
    if (q.socket || q.polling) return;
    connectSocket();
  }

  function connectSocket() {
    var opened = false;
    var socket;
    try {
      socket = new WebSocket(d.wsUrl + "?token=" + encodeURIComponent(shopperToken));
    } catch (e) {
      return startPolling();
    }
    q.socket = socket;
    socket.onopen = function () { opened = true; connection("Live updates on."); stopPolling(); };
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "sale") onSale(msg);
      else if (msg.type === "admission") admitted(msg.admission_token, msg.expires_at);
      else if (msg.type === "queue" && q.state === "waiting") placed(msg);
    };
    socket.onclose = function () {
      q.socket = null;
      connection(opened ? "Live updates paused; checking every few seconds." : "Checking every few seconds.");
      startPolling();
      if (q.state === "waiting") setTimeout(function () { if (!q.socket) connectSocket(); }, 10000 + Math.random() * 10000);
    };
  }

  function stopPolling() { q.polling = false; }

  function startPolling() {
    if (q.polling) return;
    q.polling = true;
    (function tick() {
      if (!q.polling || (q.state !== "waiting" && q.state !== "not-started")) { q.polling = false; return; }
      call("GET", "/waiting_room/now_serving", undefined, null)
        .then(function (res) { if (res.status === 200) onSale(res.body); })
        .catch(function () {})
        .finally(function () { if (q.polling) setTimeout(tick, 1000 + Math.random() * 1000); });
    })();
  }

  // ---- admitted: buy -------------------------------------------------------------------
  function admitted(token, expiresAt) {
    if (!token) return;
    var expiresMs = epochMs(expiresAt) || Drop.now() + 120000;
    if (q.admission && q.admission.token === token) return;
    q.admission = { token: token, expiresMs: expiresMs };
    try { sessionStorage.setItem(storeKey + "admission", JSON.stringify(q.admission)); } catch (e) {}
    stopPolling();
    if (q.socket) { q.socket.onclose = null; q.socket.close(); q.socket = null; }
    connection("");
    showAdmitted();
  }

  function showAdmitted() {
    if (Drop.now() < starts) return show("not-started");
    show("admitted");
    var button = $("[data-buy]");
    button.disabled = false;
    button.focus();
  }

  function idempotencyKey() {
    // One key per admission: a retry of the same click can never buy twice.
    var k = storeKey + "idem:" + q.admission.token.slice(-16);
    var value = null;
    try { value = sessionStorage.getItem(k); } catch (e) {}
    if (!value) {
      value = window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
      try { sessionStorage.setItem(k, value); } catch (e) {}
    }
    return value;
  }

  function buy(event) {
    event.preventDefault();
    if (!q.admission || q.state === "buying") return;
    show("buying");
    call("POST", "/purchase", { quantity: 1 }, q.admission.token, { "X-Idempotency-Key": idempotencyKey() })
      .then(function (res) {
        var b = res.body;
        if (res.status === 201 || res.status === 200) {
          try { sessionStorage.removeItem(storeKey + "admission"); } catch (e) {}
          window.location.assign("/orders/" + b.order_id + "/");
          return;
        }
        if (res.status === 410) return show("sold_out");
        if (res.status === 409 && b.error === "already_reserved") {
          return already(b.order_id ? "/orders/" + b.order_id + "/" : null);
        }
        if (res.status === 425) return show("not-started");
        if (res.status === 403) {
          try { sessionStorage.removeItem(storeKey + "admission"); } catch (e) {}
          q.admission = null;
          return show("expired");
        }
        if (res.status === 429 || res.status >= 500) {
          fail((b.detail || "The shop is very busy.") + " Press Try again: you will not be charged twice.");
          return;
        }
        fail(b.detail || "The purchase did not go through (" + res.status + ").");
      })
      .catch(function () {
        fail("The connection dropped. Press Try again: you will not be charged twice.");
      });
  }

  // ---- what this shopper already has in the sale ----------------------------------------
  function shopperState() {
    return fetch(d.shopperUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  function showOwnOrder(me) {
    var order = me.order;
    if (order && order.status === "RESERVED" && order.reserved_until_ms > Drop.now()) {
      q.reservation = order;
      $("[data-reserved-pay]").href = order.pay_url;
      show("reserved");
      return true;
    }
    if (!me.at_limit) return false;
    if (order && (order.status === "PAID" || order.status === "FULFILLED")) {
      $("[data-bought-link]").href = order.url;
      show("bought");
      return true;
    }
    $("[data-limit]").textContent = String(me.max_per_user);
    show("limit");
    return true;
  }

  // ---- sold out: stay subscribed until units come back ---------------------------------
  function localNotify() {
    try { return localStorage.getItem(storeKey + "notify") === "1"; } catch (e) { return false; }
  }

  function renderNotify(on) {
    $("[data-notify-off]").hidden = on;
    $("[data-notify-on]").hidden = !on;
  }

  function subscribe() {
    try { localStorage.setItem(storeKey + "notify", "1"); } catch (e) {}
    renderNotify(true);
    if (q.notifying) return;
    q.notifying = true;
    (function check() {
      if (!q.notifying) return;
      call("GET", "/waiting_room/now_serving", undefined, null)
        .then(function (res) {
          var b = res.body || {};
          if (res.status !== 200 || !q.notifying) return;
          if (b.status === "ended" || b.status === "cancelled") { unsubscribe(); show("ended"); return; }
          if (b.status === "live" && b.units_left > 0) {
            unsubscribe();
            alertsOn = true;
            alertTurn("Units are back", "The queue reopened: this page is rejoining it for you.");
            document.title = "Units are back! · " + baseTitle;
            q.rank = null; q.firstPosition = null;
            join();
          }
        })
        .catch(function () {})
        .finally(function () { if (q.notifying) setTimeout(check, 4000 + Math.random() * 3000); });
    })();
  }

  function unsubscribe() {
    q.notifying = false;
    try { localStorage.removeItem(storeKey + "notify"); } catch (e) {}
    renderNotify(false);
  }

  $("[data-notify-me]").addEventListener("click", function () {
    if (window.Notification && Notification.permission === "default") {
      Notification.requestPermission().catch(function () {});
    }
    alertsOn = true;
    try { localStorage.setItem("drop:alerts", "1"); } catch (e) {}
    renderAlertToggle();
    subscribe();
  });
  $("[data-notify-stop]").addEventListener("click", unsubscribe);

  // ---- every quarter second ------------------------------------------------------------
  Drop.onTick(function (t) {
    if (t >= ends && q.state !== "buying") { if (q.state !== "ended") show("ended"); return; }
    if (q.state === "before-open") {
      $("[data-opens-in]").textContent = "in " + Drop.formatDuration(opens - t);
    } else if (q.state === "waiting") {
      maybeAskPosition();
      renderWaiting();
    } else if (q.state === "not-started") {
      $("[data-buy-starts-in]").textContent = "in " + Drop.formatDuration(starts - t);
      if (t >= starts) showAdmitted();
    } else if (q.state === "reserved" && q.reservation) {
      var r = q.reservation.reserved_until_ms - t;
      $("[data-reserved-left]").textContent = Drop.formatDuration(r);
      if (r <= 0) { q.reservation = null; window.location.reload(); }
    } else if (q.state === "admitted" && q.admission) {
      var left = q.admission.expiresMs - t;
      $("[data-admission-left]").textContent = Drop.formatDuration(left);
      if (left <= 0) { q.admission = null; show("expired"); }
    }
  });

  $("[data-buy-form]").addEventListener("submit", buy);
  $("[data-rejoin]").addEventListener("click", function () {
    q.rank = null; q.firstPosition = null; q.serverEta = null; q.shownEta = null; join();
  });
  $("[data-retry]").addEventListener("click", function () {
    if (q.admission) { show("admitted"); return; }
    join();
  });

  Drop.ready.then(function () {
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(storeKey + "admission") || "null"); } catch (e) {}
    if (saved && saved.expiresMs > Drop.now() + 2000) {
      q.admission = saved;
      return showAdmitted();
    }
    // First what this shopper already has in the sale (bought, reserved, at the limit), and
    // whether they hold a place: a first visit joins without asking for a place it has not.
    shopperState()
      .then(function (me) {
        if (me && showOwnOrder(me)) return;
        if (localNotify()) { show("sold_out"); return subscribe(); }
        if (me && me.in_queue === false) return join();
        // Back on the page (reload, second tab): the place is kept, no need to join again.
        return call("GET", "/waiting_room/position").then(function (res) {
          if (res.status === 200 && res.body.status) return placed(res.body);
          join();
        });
      })
      .catch(join);
  });
})();
