/* The list of drops: the cached page's badges stay true (live, sold out, back in stock) by
   polling the public sale list every few seconds while a sale on the page is live. */
(function () {
  "use strict";
  var list = document.querySelector("[data-sale-list]");
  if (!list) return;
  var cards = {};
  list.querySelectorAll("[data-sale-card]").forEach(function (card) {
    cards[card.dataset.saleId] = card.querySelector("[data-countdown]");
  });

  function anyLive(t) {
    return Object.keys(cards).some(function (id) {
      var c = cards[id];
      return t >= Number(c.dataset.startsMs) && t < Number(c.dataset.endsMs);
    });
  }

  function poll() {
    if (!anyLive(window.Drop.now())) { setTimeout(poll, 5000); return; }
    fetch(list.dataset.salesUrl, { credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (sales) {
        (sales.results || sales).forEach(function (sale) {
          var node = cards[sale.id];
          if (!node) return;
          if (sale.phase === "sold_out") node.dataset.soldOut = "1";
          else if (sale.phase === "live") delete node.dataset.soldOut;
          if (sale.status) node.dataset.status = sale.status;
        });
        window.Drop.render();
      })
      .catch(function () {})
      .finally(function () { setTimeout(poll, 4000 + Math.random() * 3000); });
  }
  window.Drop.ready.then(poll);
})();
