// A draft page: a sentence and its row in the trace light up together on hover or focus.
(function () {
  function light(ev, on) {
    var el = ev.target.closest && ev.target.closest("[data-trace]");
    if (!el) return;
    var other = document.getElementById(el.getAttribute("data-trace"));
    el.classList.toggle("lit", on);
    if (other) other.classList.toggle("lit", on);
  }
  ["mouseover", "focusin"].forEach(function (t) { document.addEventListener(t, function (ev) { light(ev, true); }); });
  ["mouseout", "focusout"].forEach(function (t) { document.addEventListener(t, function (ev) { light(ev, false); }); });
})();
