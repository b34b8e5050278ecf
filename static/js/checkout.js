/* Checkout: the reservation countdown (server clock), one submit per click, and, while a
   payment is in progress, the outcome followed live over the WebSocket with polling as a
   fallback; on any change the page reloads so the server renders the ending. */
(function () {
  "use strict";
  var box = document.querySelector("[data-checkout]");
  if (!box) return;
  var status = box.dataset.status;
  var paymentStatus = box.dataset.paymentStatus;

  var form = box.querySelector("[data-pay-form]");
  if (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-pay-button]");
      button.disabled = true;
      button.textContent = "Sending…";
    });
  }

  var left = box.querySelector("[data-reservation-left]");
  if (left && status === "RESERVED" && window.Drop) {
    var until = Number(box.dataset.reservedUntilMs);
    var over = box.querySelector("[data-reservation-over]");
    window.Drop.onTick(function (t) {
      var ms = until - t;
      left.textContent = window.Drop.formatDuration(Math.max(ms, 0));
      if (ms <= 0 && form) {
        form.hidden = true;
        over.hidden = false;
      }
    });
  }

  if (paymentStatus !== "PENDING") return;
  var reloaded = false;
  function changed(order) {
    var latest = order.payments && order.payments[0];
    var now = latest ? latest.status.toUpperCase() : "";
    if (!reloaded && (order.status.toUpperCase() !== status || now !== "PENDING")) {
      reloaded = true;
      window.location.reload();
    }
  }
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (order) { if (order) changed(order); })
      .catch(function () {})
      .then(function () { if (!reloaded) setTimeout(poll, 2000); });
  }
  try {
    var socket = new WebSocket(box.dataset.wsUrl);
    socket.onmessage = function (msg) {
      var event = JSON.parse(msg.data);
      if (event.type === "order.update") {
        fetch(box.dataset.statusUrl, { credentials: "same-origin" })
          .then(function (r) { return r.json(); }).then(changed).catch(function () {});
      } else if (event.type === "order.state") {
        changed(event);
      }
    };
  } catch (e) { /* polling below still follows the outcome */ }
  setTimeout(poll, 2000);
})();
