/* yibao pages: the little the server cannot do. No framework; every page works without it,
   except the automatic refresh of a payment code at its expiry. */
(function () {
  "use strict";

  // The payment code's countdown, from the seconds the server computed (no reliance on the phone's
  // clock). At zero the countdown stops and the refresh form is submitted once: a new code replaces
  // the expired one. A page nobody looks at (a hidden tab, a locked phone) asks for no code — each one
  // is an audit entry — until it is shown again, and then at once.
  function countdown(form) {
    var total = parseInt(form.getAttribute("data-countdown"), 10);
    var out = document.getElementById("countdown");
    if (isNaN(total) || !out) return;
    var started = Date.now();
    var timer = null;
    var expired = false;
    var sent = false;
    function tick() {
      var left = Math.max(0, total - Math.floor((Date.now() - started) / 1000));
      if (left > 0) {
        var m = Math.floor(left / 60), s = left % 60;
        out.textContent = m + ":" + (s < 10 ? "0" : "") + s;
        return;
      }
      if (!expired) {
        expired = true;
        if (timer !== null) { clearInterval(timer); timer = null; }
        out.textContent = form.getAttribute("data-expired-text") || "0:00";
      }
      if (sent || document.hidden) return;  // hidden: asked for when the page is shown again (below)
      sent = true;
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
    // Used at a counter (or replaced from another screen): the code is taken away — the countdown stops and
    // says so, the code is dimmed (a tap on it gets a fresh one); a code replaced elsewhere shows the new one.
    // Asked every few seconds while the page is seen, and at once when it is shown again.
    var stateUrl = form.getAttribute("data-state-url");
    var ended = false;
    var poller = null;
    function stop() {
      ended = true;
      if (timer !== null) { clearInterval(timer); timer = null; }
      if (poller !== null) { clearInterval(poller); poller = null; }
    }
    function check() {
      if (!stateUrl || ended || expired || document.hidden || !window.fetch) return;
      fetch(stateUrl, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (doc) {
        if (!doc || ended) return;
        if (doc.state === "used") {
          stop();
          form.setAttribute("data-state", "used");
          form.classList.add("used");
          out.textContent = form.getAttribute("data-used-text") || "";
        } else if (doc.state === "replaced") {
          stop();
          window.location.reload();
        }
      }).catch(function () { /* offline: asked again at the next turn */ });
    }
    function tickUnlessEnded() { if (!ended) tick(); }
    tick();
    if (!expired) timer = setInterval(tickUnlessEnded, 1000);
    if (stateUrl && !expired) poller = setInterval(check, 3000);
    // Shown again (a hidden page's timers are slowed down): the countdown catches up at once, and an
    // expired code is replaced then; a code used meanwhile is taken away.
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { tickUnlessEnded(); check(); } });
  }

  // A tab strip wider than the screen scrolls sideways: the current tab is brought into view (centred
  // when it can be), so the reader sees where they are. Only the strip moves, never the page.
  function revealCurrentTab(strip) {
    var current = strip.querySelector("[aria-current=page]");
    if (!current || strip.scrollWidth <= strip.clientWidth) return;
    var s = strip.getBoundingClientRect(), r = current.getBoundingClientRect();
    strip.scrollLeft += (r.left + r.width / 2) - (s.left + s.width / 2);
  }

  // A form is sent once: its buttons are disabled after the first submit (the server ignores a
  // second post of the same form anyway, by its nonce). Forms with data-confirm ask first.
  function guard(form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        return;
      }
      if (form.method.toLowerCase() !== "post") return;
      if (form.getAttribute("data-sent") === "1") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      setTimeout(function () {
        Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (b) { b.disabled = true; });
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form"), guard);
    var code = document.querySelector("form[data-countdown]");
    if (code) countdown(code);
    Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("nav.tabs"), revealCurrentTab);
  });
})();
