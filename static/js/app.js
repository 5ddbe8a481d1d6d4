// Site-wide behaviour. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";

  // Live workshop events: any element with data-live-url listens on the workshop's event
  // socket and asks htmx to refresh elements marked data-live-refresh="kind1 kind2".
  function connectLive(url) {
    var backoff = 500;
    var socket;
    function open() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + url);
      socket.onopen = function () {
        if (backoff > 500) { refreshAll("reconnect"); }
        backoff = 500;
        document.documentElement.dataset.live = "connected";
      };
      socket.onmessage = function (ev) {
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        document.dispatchEvent(new CustomEvent("calma:event", { detail: data }));
        if (data.kind === "stage" && document.querySelector("[data-reload-on-stage]")) {
          window.location.reload();
          return;
        }
        refreshAll(data.kind);
      };
      socket.onclose = function () {
        document.documentElement.dataset.live = "disconnected";
        setTimeout(open, backoff);
        backoff = Math.min(backoff * 2, 10000);
      };
    }
    open();
  }

  // A burst of events (30 people progressing at once) refreshes each element at most once
  // per second: the first event refreshes at once, later ones within the second are merged.
  // Elements are tracked by id, since an outerHTML swap replaces the element itself.
  var pending = new Map();
  function refreshSoon(el) {
    var key = el.id ? "#" + el.id : el;
    var state = pending.get(key) || { last: 0, timer: null };
    if (state.timer) { return; }
    var wait = Math.max(0, state.last + 1000 - Date.now());
    state.timer = setTimeout(function () {
      state.timer = null;
      state.last = Date.now();
      var target = el.id ? document.getElementById(el.id) : el;
      if (window.htmx && target && document.body.contains(target)) { window.htmx.trigger(target, "calma-refresh"); }
    }, wait);
    pending.set(key, state);
  }

  function refreshAll(kind) {
    document.querySelectorAll("[data-live-refresh]").forEach(function (el) {
      var kinds = el.getAttribute("data-live-refresh").split(/\s+/);
      if (kind === "reconnect" || kinds.indexOf(kind) >= 0 || kinds.indexOf("*") >= 0) {
        refreshSoon(el);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelector("[data-live-url]");
    if (live) { connectLive(live.getAttribute("data-live-url")); }

    // Copy buttons for invite links.
    document.body.addEventListener("click", function (ev) {
      var btn = ev.target.closest("[data-copy-target]");
      if (!btn) { return; }
      var input = document.getElementById(btn.getAttribute("data-copy-target"));
      if (!input) { return; }
      input.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value); }
      btn.textContent = btn.getAttribute("data-copied-label") || "Copied";
    });

    // Confirm buttons: <button data-confirm="Are you sure?">
    document.body.addEventListener("submit", function (ev) {
      var btn = ev.submitter;
      if (btn && btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) { ev.preventDefault(); }
    });
  });
})();
