/* The sale page: phase message, join button and the live units-left figure. The page itself is
   cached and identical for everyone; live figures come from the public now_serving endpoint. */
(function () {
  "use strict";
  var sale = document.querySelector("[data-sale]");
  if (!sale) return;
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
  var soldOut = false;
  var lastText = "";

  function say(text) {
    if (text !== lastText) { message.textContent = text; lastText = text; }
  }

  function render(t) {
    renderPhase(t);
    joinNote.hidden = join.hidden;
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
    join.hidden = false;
    if (t < opens) {
      say("The waiting room opens in " + window.Drop.formatDuration(opens - t) + ". You can wait on the next page and join automatically.");
    } else if (t < starts) {
      say("The waiting room is open. Join now: everyone who joins before the start gets a random, fair place.");
    } else {
      say("The sale is live. Join the waiting room to buy.");
    }
  }

  function showUnits(left) {
    if (left == null) return;
    unitsRow.hidden = false;
    unitsLeft.textContent = String(left);
    soldOut = left === 0 && window.Drop.now() >= starts;
  }

  // Public figures, at most every few seconds (cacheable for a second on the server side).
  function poll() {
    var url = window.Drop.now() >= opens ? sale.dataset.nowServingUrl : sale.dataset.saleUrl;
    fetch(url, { credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) {
        showUnits(body.units_left != null ? body.units_left : body.remaining_inventory);
        if (body.status === "sold_out" || body.phase === "sold_out") soldOut = true;
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

  window.Drop.onTick(render);
  window.Drop.ready.then(poll);
})();
