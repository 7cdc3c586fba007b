// Polls a running FeedRun's progress JSON every 2 s and updates the "progress" field in place;
// reloads the page once the run has finished so every count on it is final.
(function () {
  "use strict";
  function poll(el) {
    fetch(el.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        el.textContent = data.text;
        el.dataset.status = data.status;
        if (data.active) { setTimeout(function () { poll(el); }, 2000); }
        else { window.location.reload(); }
      })
      .catch(function () { setTimeout(function () { poll(el); }, 5000); });
  }
  function start() {
    var el = document.getElementById("run-progress");
    if (el && (el.dataset.status === "queued" || el.dataset.status === "running")) {
      setTimeout(function () { poll(el); }, 2000);
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
