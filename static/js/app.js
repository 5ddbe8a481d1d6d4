// Site-wide behaviour. No inline script anywhere (the CSP forbids it).

// The one comparison key for people's text in the browser, like workshops.text.normalize on the
// server: NFKC (composed and decomposed spellings match), lower case where the script has case,
// whitespace collapsed. Search boxes compare CalmaText.normalize(label) with the query's.
// The header's language picker works without script (a select and a button). With script, on a
// phone (where the button is hidden to keep the header on one line) choosing a language applies it.
document.addEventListener("DOMContentLoaded", function () {
  var picker = document.querySelector("[data-language-picker]");
  if (!picker) { return; }
  picker.setAttribute("data-auto", "");
  var button = picker.querySelector("button");
  picker.querySelector("select").addEventListener("change", function () {
    if (button && button.offsetParent === null) { picker.submit(); }
  });
});

window.CalmaText = {
  normalize: function (text) {
    var s = String(text == null ? "" : text);
    // The same key as the server's workshops.text.normalize: NFC, whitespace collapsed, case folded.
    if (s.normalize) { s = s.normalize("NFC"); }
    return s.replace(/\s+/g, " ").trim().toLowerCase();
  },
  // Text as HTML shows it as written (Plotly reads some HTML in labels and names).
  escape: function (text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  },
  // The UTF-16 offset of (node, offset) in root's text, when node is one of root's text nodes; else -1.
  offsetIn: function (root, node, offset) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var total = 0, n;
    while ((n = walker.nextNode())) {
      if (n === node) { return total + offset; }
      total += n.textContent.length;
    }
    return -1;
  }
};

// A Plotly chart drawn once the page has loaded, from the <script type="application/json"> block
// `dataId` into the element `chartId`: draw(data, element); nothing where Plotly or either is missing.
window.CalmaChart = function (dataId, chartId, draw) {
  window.addEventListener("load", function () {
    var node = document.getElementById(dataId);
    var el = document.getElementById(chartId);
    if (!window.Plotly || !node || !el) { return; }
    draw(JSON.parse(node.textContent), el);
  });
};
(function () {
  "use strict";

  // Live workshop events: the element with data-live-url (templates/base.html, on every page
  // of a member) listens on the workshop's event socket (CalmaSocket, static/js/live.js) and
  // asks htmx to refresh elements marked data-live-refresh="kind1 kind2". Participants' pages
  // follow stage changes: from the "stage" event, and from the stage the server reports on
  // every (re)connect and heartbeat, so a change missed while disconnected is still seen.
  function connectLive(holder) {
    var pageStage = holder.getAttribute("data-stage");
    function stageSeen(stage) {
      if (!stage || !pageStage || stage === pageStage) { return; }
      pageStage = stage;
      followStage(holder, stage);
    }
    window.CalmaSocket.open(holder.getAttribute("data-live-url"), {
      name: "live",
      ping: function () { return { action: "ping" }; },
      onopen: function (reconnected) { if (reconnected) { refreshAll("reconnect"); } },
      onmessage: function (data) {
        if (data.kind === "hello" || data.kind === "pong") { stageSeen(data.payload && data.payload.stage); return; }
        document.dispatchEvent(new CustomEvent("calma:event", { detail: data }));
        if (data.kind === "stage") { stageSeen(data.payload && data.payload.stage); }
        refreshAll(data.kind);
      }
    });
  }

  // Unsaved work on the page: a text field someone typed into, or something the live helper
  // is still holding for them.
  function hasUnsavedInput() {
    var typed = Array.prototype.some.call(document.querySelectorAll("main textarea, main input[type=text], main input:not([type])"),
      function (f) { return f.value.trim() && f.value !== f.defaultValue; });
    return typed || document.querySelector("#live-status .live-status-pending li") !== null && document.documentElement.dataset.online === "0";
  }

  function followStage(holder, stage) {
    var bar = document.querySelector(".stage-bar");
    var label = stage;
    if (bar) {
      bar.querySelectorAll("li").forEach(function (li) {
        var now = li.getAttribute("data-stage") === stage;
        li.classList.toggle("current", now);
        if (now) { li.setAttribute("aria-current", "step"); label = li.textContent; } else { li.removeAttribute("aria-current"); }
      });
    }
    document.dispatchEvent(new CustomEvent("calma:stage", { detail: { stage: stage } }));
    if (!holder.hasAttribute("data-follow-stage")) { return; }  // staff pages: the bar is enough
    if (document.querySelector("[data-reload-on-stage]")) { window.location.reload(); return; }
    if (!hasUnsavedInput()) { window.location.assign(holder.getAttribute("data-home-url")); return; }
    // Someone is typing: do not take the page away; say what happened and where to go.
    var notice = document.getElementById("stage-notice");
    if (notice) {
      notice.querySelector(".stage-notice-text").textContent =
        notice.dataset.msgMoved.replace("%s", label) + " " + notice.dataset.msgKept + " ";
      notice.hidden = false;
    }
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
    if (live && window.CalmaSocket) { connectLive(live); }

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
