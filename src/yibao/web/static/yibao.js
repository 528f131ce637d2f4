/* yibao pages: the little the server cannot do. No framework; every page works without it,
   except the automatic refresh of a payment code at its expiry. */
(function () {
  "use strict";

  // The payment code's countdown, from the seconds the server computed (no reliance on the phone's
  // clock). At zero the refresh form is submitted: a new code replaces the expired one.
  function countdown(form) {
    var left = parseInt(form.getAttribute("data-countdown"), 10);
    var out = document.getElementById("countdown");
    if (isNaN(left) || !out) return;
    var started = Date.now();
    var total = left;
    var done = false;
    function tick() {
      left = Math.max(0, total - Math.floor((Date.now() - started) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      out.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      if (left === 0 && !done) {
        done = true;
        out.textContent = form.getAttribute("data-expired-text") || "0:00";
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }
    }
    tick();
    setInterval(tick, 1000);
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
    // A select that says data-autosubmit changes the page as soon as it changes.
    Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
  });
})();
