/* My orders: each reservation's time left to pay, on the server's clock. */
(function () {
  "use strict";
  var rows = document.querySelectorAll('[data-order-row][data-status="RESERVED"]');
  if (!rows.length) return;
  window.Drop.onTick(function (t) {
    rows.forEach(function (row) {
      var ms = Number(row.dataset.reservedUntilMs) - t;
      var left = row.querySelector("[data-row-left]");
      var pay = row.querySelector("[data-row-pay]");
      if (ms > 0) {
        left.textContent = window.Drop.formatDuration(ms);
      } else {
        row.querySelector("[data-row-timer]").textContent = "Time to pay is up.";
        if (pay) pay.hidden = true;
      }
    });
  });
})();
