// analysisd pages: live updates (server-sent events), the countdown, the terminate button.
// The pages work without it (plain links and forms); this only keeps them current.
"use strict";
(function () {
  var body = document.body;
  var ui = (window.analysisdUi = { events: 0, ready: false });
  var sources = [];

  function listen(url) {
    var source = new EventSource(url);
    sources.push(source);
    return source;
  }

  // A page left behind (or kept in the back/forward cache) gives its stream back: the
  // browser's few connections per server are for the next page.
  window.addEventListener("pagehide", function () {
    sources.forEach(function (source) {
      source.close();
    });
    sources = [];
  });

  function setState(text) {
    var el = document.getElementById("live-state");
    if (el) el.textContent = text;
  }

  function countdown() {
    var now = Date.now();
    document.querySelectorAll("[data-next-at]").forEach(function (el) {
      var left = Math.ceil((Date.parse(el.getAttribute("data-next-at")) - now) / 1000);
      el.textContent = left > 0 ? "next measurement in " + left + "s" : "next measurement due now";
    });
  }

  function watchRun() {
    var url = body.getAttribute("data-live");
    var since = body.getAttribute("data-version") || "";
    var run = document.getElementById("run");
    if (!url || !run || run.getAttribute("data-completed") === "1") return;
    var source = listen(url + "?since=" + encodeURIComponent(since));
    source.addEventListener("page", function (event) {
      var data = JSON.parse(event.data);
      var focused = document.activeElement && document.activeElement.id;
      document.getElementById("run").outerHTML = data.html;
      body.setAttribute("data-version", data.version);
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      ui.events += 1;
      countdown();
    });
    source.addEventListener("done", function () {
      source.close();
      setState("final");
    });
    source.addEventListener("gone", function () {
      source.close();
      setState("this run was deleted");
    });
    source.onerror = function () {
      setState("reconnecting\u2026");
    };
    source.onopen = function () {
      setState("updates live");
    };
  }

  function watchList() {
    var url = body.getAttribute("data-live");
    var rows = document.getElementById("runs");
    if (!url || !rows) return;
    var source = listen(url);
    source.addEventListener("row", function (event) {
      var data = JSON.parse(event.data);
      var old = rows.querySelector('tr[data-run="' + CSS.escape(data.name) + '"]');
      if (!data.html) {
        if (old) old.remove();
      } else if (old) {
        old.outerHTML = data.html;
      } else if (body.getAttribute("data-first") === "1") {
        rows.insertAdjacentHTML("afterbegin", data.html);
        var empty = document.getElementById("empty");
        if (empty) empty.remove();
      }
      ui.events += 1;
    });
    source.onerror = function () {
      setState("reconnecting\u2026");
    };
    source.onopen = function () {
      setState("updates live");
    };
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("terminate")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    var result = document.getElementById("terminate-result");
    button.disabled = true;
    result.textContent = "terminating\u2026";
    fetch(form.action, {
      method: "POST",
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        result.textContent = "terminate requested; the run stops after measurements in flight";
      })
      .catch(function (error) {
        button.disabled = false;
        result.textContent = "terminate failed: " + error.message;
      });
  });

  var kind = body.getAttribute("data-page");
  if (kind === "run") {
    watchRun();
    countdown();
    setInterval(countdown, 1000);
  } else if (kind === "list") {
    watchList();
  }
  ui.ready = true;
  ui.readyAt = performance.now();
  document.documentElement.setAttribute("data-ready", "1");
})();
