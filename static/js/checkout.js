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
    cardInputs(form);
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-pay-button]");
      button.disabled = true;
      button.textContent = "Sending…";
    });
  }

  /* Typing aids only: the number in groups (4-6-5 for American Express, else fours), the
     expiry as MM / YY, digits only in the CVC, the brand shown. The gateway decides what is
     valid; the server takes the digits whatever the spacing. */
  function brandOf(digits) {
    if (/^4/.test(digits)) return "Visa";
    if (/^3[47]/.test(digits)) return "American Express";
    if (/^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))/.test(digits)) return "Mastercard";
    if (/^(6011|65|64[4-9])/.test(digits)) return "Discover";
    return "";
  }
  function grouped(digits) {
    var sizes = /^3[47]/.test(digits) ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var out = [], at = 0;
    for (var i = 0; i < sizes.length && at < digits.length; i++) {
      out.push(digits.slice(at, at + sizes[i]));
      at += sizes[i];
    }
    return out.join(" ");
  }
  function keepCaret(input, value, digitsBefore) {
    input.value = value;
    var seen = 0, pos = 0;
    while (pos < value.length && seen < digitsBefore) {
      if (/[0-9]/.test(value[pos])) seen++;
      pos++;
    }
    if (document.activeElement === input) input.setSelectionRange(pos, pos);
  }
  function digitsBeforeCaret(input) {
    return input.value.slice(0, input.selectionStart || 0).replace(/[^0-9]/g, "").length;
  }
  function cardInputs(form) {
    var number = form.querySelector("[data-card-number]");
    var brand = form.querySelector("[data-card-brand]");
    var expiry = form.querySelector("[data-card-expiry]");
    var cvc = form.querySelector("[data-card-cvc]");
    number.addEventListener("input", function () {
      var before = digitsBeforeCaret(number);
      var digits = number.value.replace(/[^0-9]/g, "").slice(0, 19);
      keepCaret(number, grouped(digits), before);
      brand.textContent = brandOf(digits);
      cvc.maxLength = /^3[47]/.test(digits) ? 4 : 3;
    });
    expiry.addEventListener("input", function (event) {
      var digits = expiry.value.replace(/[^0-9]/g, "").slice(0, 4);
      if (digits.length === 1 && digits > "1") digits = "0" + digits;
      var deleting = event.inputType && event.inputType.indexOf("delete") === 0;
      if (digits.length > 2 || (digits.length === 2 && !deleting)) {
        expiry.value = digits.slice(0, 2) + " / " + digits.slice(2);
      } else {
        expiry.value = digits;
      }
    });
    cvc.addEventListener("input", function () {
      cvc.value = cvc.value.replace(/[^0-9]/g, "").slice(0, 4);
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
