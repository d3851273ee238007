// Keeps a dashboard page current: polls the views' lag every few seconds, shows it, and redraws
// the page's main part when the views have moved on (keeping open details open).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var seen = live.getAttribute("data-position") || "";
  var EVERY = 3000;

  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA");
  }

  function redraw() {
    return fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { return; }
      return r.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        var main = document.querySelector("main");
        if (!fresh || !main) { return; }
        var open = Array.prototype.map.call(main.querySelectorAll("details[open]"),
                                            function (d) { return d.id; });
        main.replaceWith(fresh);
        open.forEach(function (id) {
          var d = id && document.getElementById(id);
          if (d) { d.open = true; }
        });
        document.body.setAttribute("data-redrawn", String(Date.now()));
      });
    });
  }

  function tick() {
    fetch("/dashboard/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { location.href = "/"; return null; }
        return r.json();
      })
      .then(function (s) {
        if (!s) { return; }
        live.textContent = s.text;
        var position = s.position === null || s.position === undefined ? "" : String(s.position);
        // Redrawn whenever the views have moved on (under steady ingest they are never quite
        // caught up), unless the person is typing into a control.
        if (position && position !== seen && !busy()) {
          seen = position;
          return redraw();
        }
      })
      .catch(function () { live.textContent = "connection lost; retrying"; })
      .then(function () { setTimeout(tick, EVERY); });
  }
  setTimeout(tick, EVERY);
}());
