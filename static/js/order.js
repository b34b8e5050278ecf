/* The reservation's countdown, on the server's clock. At zero the page says so and reloads
   once so the shopper sees what the server decided. */
(function () {
  "use strict";
  var order = document.querySelector("[data-order]");
  if (!order || order.dataset.status !== "RESERVED") return;
  var until = Number(order.dataset.reservedUntilMs);
  var left = order.querySelector("[data-reservation-left]");
  var over = order.querySelector("[data-reservation-over]");
  var pay = order.querySelector("[data-pay-actions]");
  var announce = order.querySelector("[data-reservation-announce]");
  var announced = {};
  var reloaded = false;

  window.Drop.onTick(function (t) {
    var ms = until - t;
    left.textContent = window.Drop.formatDuration(ms);
    var minutes = Math.ceil(ms / 60000);
    if (ms > 0 && minutes <= 5 && !announced[minutes] && ms % 60000 > 55000) {
      announced[minutes] = true;
      announce.textContent = minutes + (minutes === 1 ? " minute" : " minutes") + " left to pay.";
    }
    order.classList.toggle("urgent", ms > 0 && ms < 60000);
    over.hidden = ms > 0;
    pay.hidden = ms <= 0;
    if (ms <= 0) {
      if (!reloaded) {
        reloaded = true;
        setTimeout(function () { window.location.reload(); }, 8000);
      }
    }
  });
})();
