/* The sale page: phase message, join button and the live units-left figure. The page itself is
   cached and identical for everyone; live figures come from the public now_serving endpoint,
   and this shopper's own state (bought, reserved, at the limit) from /sales/<id>/me, private
   and never cached. */
(function () {
  "use strict";
  var sale = document.querySelector("[data-sale]");
  if (!sale) return;
  var Drop = window.Drop;
  var starts = Number(sale.dataset.startsMs);
  var ends = Number(sale.dataset.endsMs);
  var opens = Number(sale.dataset.queueOpensMs);
  var status = sale.dataset.status;
  var message = sale.querySelector("[data-phase-message]");
  var join = sale.querySelector("[data-join]");
  var joinNote = sale.querySelector("[data-join-note]");
  var countdown = sale.querySelector("[data-countdown]");
  var unitsRow = sale.querySelector("[data-units-left-row]");
  var unitsLeft = sale.querySelector("[data-units-left]");
  var stateBox = sale.querySelector("[data-shopper-state]");
  var stateMessage = sale.querySelector("[data-shopper-message]");
  var stateLink = sale.querySelector("[data-shopper-link]");
  var announce = sale.querySelector("[data-shopper-announce]");
  var soldOut = sale.dataset.phase === "sold_out";
  var shopper = null; // this shopper's state, once known
  var lastText = "";
  var lastAnnounced = 0;

  function say(text) {
    if (text !== lastText) { message.textContent = text; lastText = text; }
  }

  function over(t) { return status === "CANCELLED" || status === "COMPLETED" || t >= ends; }

  function render(t) {
    renderPhase(t);
    renderShopper(t);
    joinNote.hidden = join.hidden;
    // An ended sale has no "units left" to speak of.
    if (over(t)) unitsRow.hidden = true;
  }

  function renderPhase(t) {
    if (status === "CANCELLED") {
      say("This sale was cancelled."); join.hidden = true; return;
    }
    if (status === "COMPLETED" || t >= ends) {
      say("This sale has ended."); join.hidden = true; return;
    }
    if (soldOut) {
      say("Sold out. Unpaid reservations return to the sale, so keep an eye out.");
      join.hidden = true; countdown.dataset.soldOut = "1"; return;
    }
    delete countdown.dataset.soldOut;
    join.hidden = !!(shopper && shopper.blocksJoin);
    if (t < opens) {
      // A live region: whole minutes, so a screen reader hears it now and then, not every second.
      var minutes = Math.ceil((opens - t) / 60000);
      say("The waiting room opens in " + (minutes <= 1 ? "less than a minute" : minutes + " minutes") + ". You can wait on the next page and join automatically.");
    } else if (t < starts) {
      var toStart = Math.ceil((starts - t) / 60000);
      say("The waiting room is open and the sale starts in " + (toStart <= 1 ? "less than a minute" : toStart + " minutes") + ". Join now: everyone who joins before the start gets a random, fair place.");
    } else {
      say(join.hidden ? "The sale is live." : "The sale is live. Join the waiting room to buy.");
    }
  }

  function renderShopper(t) {
    if (!shopper || !shopper.order && !shopper.at_limit) { stateBox.hidden = true; return; }
    var order = shopper.order;
    var text = "", link = null, linkText = "", kind = "";
    if (order && order.status === "RESERVED" && order.reserved_until_ms > t) {
      var left = Drop.formatDuration(order.reserved_until_ms - t);
      text = "Your reservation ends in " + left + ": pay now to keep it.";
      link = order.pay_url; linkText = "Pay now"; kind = "warn";
      if (t - lastAnnounced > 60000) {
        lastAnnounced = t;
        announce.textContent = "Your reservation ends in " + Math.ceil((order.reserved_until_ms - t) / 60000) + " minutes.";
      }
    } else if (order && (order.status === "PAID" || order.status === "FULFILLED")) {
      text = "You bought this" + (shopper.at_limit ? "." : ". You may buy " + (shopper.max_per_user - shopper.units_held) + " more.");
      link = order.url; linkText = "See your receipt"; kind = "ok";
    } else if (shopper.at_limit) {
      text = "You have reached this sale's limit of " + shopper.max_per_user + " per shopper.";
      link = "/orders/"; linkText = "My orders";
    } else if (order && (order.status === "CANCELLED" || order.status === "EXPIRED" || order.status === "RESERVED")) {
      text = "Your last reservation ended without a purchase (" + order.status_label.toLowerCase() + "). You can join again while units remain.";
      link = order.url; linkText = "See that order";
    } else if (order && order.status === "REFUNDED") {
      text = "Your purchase in this sale was refunded.";
      link = order.url; linkText = "See that order";
    }
    stateBox.hidden = !text;
    stateBox.className = "notice" + (kind ? " " + kind : "");
    if (stateMessage.textContent !== text) stateMessage.textContent = text;
    stateLink.hidden = !link;
    if (link) { stateLink.href = link; stateLink.textContent = linkText; }
    stateLink.className = kind === "warn" ? "button primary" : "button";
  }

  function loadShopper() {
    fetch(sale.dataset.shopperUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.signed_in) return;
        var order = body.order;
        var holding = order && (order.status === "PAID" || order.status === "FULFILLED" ||
          (order.status === "RESERVED" && order.reserved_until_ms > Drop.now()));
        body.blocksJoin = !!(body.at_limit || (holding && order.status === "RESERVED"));
        shopper = body;
        render(Drop.now());
      })
      .catch(function () { /* the page works without it */ });
  }

  function showUnits(left) {
    if (left == null) return;
    unitsRow.hidden = over(Drop.now());
    unitsLeft.textContent = String(left);
    soldOut = left === 0 && Drop.now() >= starts;
  }

  // Public figures, at most every few seconds (cacheable for a second on the server side).
  function poll() {
    if (over(Drop.now())) return;
    var url = Drop.now() >= opens ? sale.dataset.nowServingUrl : sale.dataset.saleUrl;
    fetch(url, { credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) {
        showUnits(body.units_left != null ? body.units_left : body.remaining_inventory);
        if (body.status === "sold_out" || body.phase === "sold_out") soldOut = true;
        if (body.status === "CANCELLED" || body.phase === "cancelled") status = "CANCELLED";
      })
      .catch(function () {
        // now_serving not available: the sale's own endpoint has the count too.
        if (url !== sale.dataset.saleUrl) {
          fetch(sale.dataset.saleUrl, { credentials: "omit" })
            .then(function (r) { return r.json(); })
            .then(function (body) { showUnits(body.remaining_inventory); })
            .catch(function () {});
        }
      })
      .finally(function () { setTimeout(poll, 3000 + Math.random() * 2000); });
  }

  Drop.onTick(render);
  Drop.ready.then(function () { loadShopper(); poll(); });
})();
