/* Cacheable pages are the same for everyone; the shopper's name comes from /me. */
(function () {
  "use strict";
  var nav = document.querySelector("[data-account]");
  if (!nav) return;
  fetch("/me", { credentials: "same-origin", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : { username: null }; })
    .then(function (me) {
      if (!me.username) return;
      var who = document.createElement("span");
      who.className = "who";
      who.append("Signed in as ");
      var strong = document.createElement("strong");
      strong.textContent = me.username;
      who.append(strong);
      var form = document.createElement("form");
      form.method = "post";
      form.action = "/accounts/logout/";
      form.className = "inline";
      var csrf = document.createElement("input");
      csrf.type = "hidden";
      csrf.name = "csrfmiddlewaretoken";
      csrf.value = me.csrf_token;
      var button = document.createElement("button");
      button.type = "submit";
      button.className = "link";
      button.textContent = "Sign out";
      form.append(csrf, button);
      var orders = document.createElement("a");
      orders.href = "/orders/";
      orders.textContent = "My orders";
      nav.replaceChildren(orders, document.createTextNode(" "), who, document.createTextNode(" "), form);
    })
    .catch(function () { /* stay generic */ });
})();
