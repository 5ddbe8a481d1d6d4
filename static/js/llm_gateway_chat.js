// Interact stage chat: streams answers into the page over the conversation's websocket.
// The page is rendered from stored state; the socket only carries deltas ({t:"d", id, o, x},
// offsets in UTF-16 units) and status changes ({t:"s", id, status}). Whenever the page may
// have missed something (socket (re)opened, a gap in offsets, a quiet stream) it re-fetches
// the stored message and replays buffered deltas on top. Model text is only ever inserted as
// text nodes while streaming; the finished answer comes back from the server as sanitized HTML.
(function () {
  "use strict";
  var chat = document.getElementById("chat");
  if (!chat) { return; }
  var buffers = {};      // message id -> [{o, x}] deltas not yet applied
  var activity = {};     // message id -> last time we heard of it
  var refreshing = {};   // message id -> true while a fetch is in flight
  var ACTIVE = { pending: true, streaming: true };
  var lastLogRefresh = 0;

  function msgEl(id) { return document.getElementById("m-" + id); }
  function isActive(el) { return el && ACTIVE[el.dataset.status]; }
  function live(text) { var s = document.getElementById("chat-live"); if (s) { s.textContent = text; } }
  function label(name, fallback) { return chat.dataset[name] || fallback; }

  function nearBottom() { return window.innerHeight + window.scrollY >= document.body.scrollHeight - 160; }
  function toBottom() { window.scrollTo(0, document.body.scrollHeight); }

  function updateBusy() {
    var busy = !!document.querySelector("#thread-log .msg[data-status=pending], #thread-log .msg[data-status=streaming]");
    var button = document.getElementById("send-button");
    if (button) { button.disabled = busy; }
    // The status line speaks of the answer in progress, never of the one before it.
    if (busy && chat.dataset.busy !== "1") { live(label("answeringLabel", "Answering…")); }
    chat.dataset.busy = busy ? "1" : "0";
    // Compare mode: the choice opens when every candidate answer has finished.
    document.querySelectorAll("#thread-log .compare-turn").forEach(function (turn) {
      var waiting = !!turn.querySelector(".msg[data-status=pending], .msg[data-status=streaming]");
      var form = turn.querySelector("form.choice");
      if (!form) { return; }
      if (form.dataset.wait === "1" && !waiting && Date.now() - lastLogRefresh > 2000) {
        lastLogRefresh = Date.now();
        refreshLog();  // the stored state decides which answers can be chosen
        return;
      }
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = waiting; });
    });
  }

  function buffer(id, o, x) {
    (buffers[id] = buffers[id] || []).push({ o: o, x: x });
  }

  // Append what is new in (o, x) to the message; returns false when there is a gap.
  function append(el, o, x) {
    var body = el.querySelector("[data-stream]");
    if (!body) { return true; }
    var len = parseInt(el.dataset.len || "0", 10);
    var end = o + x.length;
    if (end <= len) { return true; }
    if (o > len) { return false; }
    var stick = nearBottom();
    body.appendChild(document.createTextNode(x.slice(len - o)));
    el.dataset.len = String(end);
    if (el.dataset.status === "pending") {
      el.dataset.status = "streaming";
      var st = el.querySelector(".msg-status");
      if (st) { st.lastChild.textContent = label("answeringLabel", "Answering…"); }
    }
    if (stick) { toBottom(); }
    return true;
  }

  function replay(id) {
    var el = msgEl(id);
    var list = buffers[id];
    if (!el || !list) { return; }
    if (!isActive(el)) { delete buffers[id]; return; }
    list.sort(function (a, b) { return a.o - b.o; });
    var rest = [];
    list.forEach(function (d) { if (!append(el, d.o, d.x)) { rest.push(d); } });
    var len = parseInt(el.dataset.len || "0", 10);
    rest = rest.filter(function (d) { return d.o + d.x.length > len; });
    if (rest.length) {
      buffers[id] = rest;
      setTimeout(function () { refreshMessage(id); }, 700);  // stored text lags a little: ask again
    } else {
      delete buffers[id];
    }
  }

  function replaceWithHtml(target, html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    var node = tpl.content.firstElementChild;
    if (node) {
      target.replaceWith(node);
      if (window.htmx) { window.htmx.process(node); }
    }
    return node;
  }

  function refreshMessage(id) {
    var el = msgEl(id);
    if (!el || refreshing[id]) { return; }
    refreshing[id] = true;
    fetch(el.dataset.url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var current = msgEl(id);
        if (!current) { return; }
        var wasActive = isActive(current);
        var node = replaceWithHtml(current, html);
        activity[id] = Date.now();
        if (node && isActive(node)) { replay(id); }
        else {
          delete buffers[id];
          if (wasActive && node) { announce(node.dataset.status, node); }
        }
        updateBusy();
      })
      .catch(function () {})
      .then(function () { delete refreshing[id]; });
  }

  function refreshLog(then) {
    fetch(chat.dataset.logUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html;
        var log = tpl.content.getElementById("thread-log");
        var current = document.getElementById("thread-log");
        if (log && current) { current.replaceWith(log); if (window.htmx) { window.htmx.process(log); } }
        var title = tpl.content.getElementById("chat-title");
        var shownTitle = document.getElementById("chat-title");
        if (title && shownTitle) { title.removeAttribute("hx-swap-oob"); shownTitle.replaceWith(title); }
        afterLogChange();
        if (then) { then(true); }
      })
      .catch(function () { if (then) { then(false); } });
  }

  function announce(status, node) {
    if (status === "complete" && node && node.dataset.finish === "length") { live(label("cutLabel", "Cut off at the length limit.")); }
    else if (status === "complete") { live(label("doneLabel", "Answer complete.")); }
    else if (status === "interrupted") { live(label("interruptedLabel", "The answer was interrupted.")); }
    else if (status === "failed") { live(label("failedLabel", "No answer.")); }
  }

  function afterLogChange() {
    document.querySelectorAll("#thread-log .msg").forEach(function (el) {
      var id = el.dataset.id;
      activity[id] = Date.now();
      if (isActive(el)) { replay(id); }
    });
    updateBusy();
  }

  function onEvent(data) {
    if (data.t === "d") {
      activity[data.id] = Date.now();
      var el = msgEl(data.id);
      if (!el) { buffer(data.id, data.o, data.x); return; }  // the new message is on its way (htmx swap)
      if (!isActive(el)) { return; }
      if (!append(el, data.o, data.x)) { buffer(data.id, data.o, data.x); refreshMessage(data.id); }
    } else if (data.t === "s") {
      activity[data.id] = Date.now();
      var m = msgEl(data.id);
      if (data.status === "retrying") {
        var st = m && m.querySelector(".msg-status");
        if (st) { st.lastChild.textContent = label("retryingLabel", "The model is slow to answer; trying again…"); }
        return;
      }
      if (m) { refreshMessage(data.id); } else { refreshLog(); }
    } else if (data.t === "sent" || data.t === "refused" || data.t === "http") {
      sendAnswered(data);
    }
  }

  // The conversation's socket (the site's one reconnecting client, static/js/live.js); every
  // (re)open catches up on the answers in progress.
  function connect() {
    socket = window.CalmaSocket.open(chat.dataset.ws, {
      every: 15000,
      ping: function () { return { t: "ping" }; },
      onstate: function (state) {
        chat.dataset.socket = state === "connected" ? "open" : "closed";
        if (state !== "connected" && sending) { sendLost(); }
      },
      onopen: function () {
        checkUnsure();
        document.querySelectorAll("#thread-log .msg").forEach(function (el) {
          if (isActive(el)) { refreshMessage(el.dataset.id); }
        });
      },
      onmessage: onEvent
    });
  }

  // A message that could not be sent (no network) stays in the box; the offline notice says so.
  document.body.addEventListener("htmx:sendError", function (ev) {
    var form = ev.detail && ev.detail.elt && ev.detail.elt.closest && ev.detail.elt.closest("#composer");
    if (form && window.CalmaSocket) { window.CalmaSocket.note("chat", label("unsentLabel", "Your message was not sent: it is kept in the box.")); }
  });
  document.body.addEventListener("htmx:afterRequest", function (ev) {
    var form = ev.detail && ev.detail.elt && ev.detail.elt.closest && ev.detail.elt.closest("#composer");
    if (form && ev.detail.successful && window.CalmaSocket) { window.CalmaSocket.note("chat", null); }
  });

  // Watchdog: an answer we have not heard about for a while is re-read from the server (which
  // ends answers whose generator died), so nothing spins forever.
  setInterval(function () {
    var now = Date.now();
    document.querySelectorAll("#thread-log .msg").forEach(function (el) {
      if (isActive(el) && now - (activity[el.dataset.id] || 0) > 12000) {
        activity[el.dataset.id] = now;
        refreshMessage(el.dataset.id);
      }
    });
  }, 4000);

  // A message was stored (the Send's fragment marks it data-sent): empty the box.
  function afterSent() {
    var sent = document.querySelector('#thread-log [data-sent="1"]');
    if (sent) {
      var box = document.querySelector("#composer textarea");
      if (box) { box.value = ""; box.focus(); }
      sent.removeAttribute("data-sent");
      if (window.CalmaSocket) { window.CalmaSocket.note("chat", null); }
      toBottom();
    }
    afterLogChange();
  }

  document.body.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.detail && ev.detail.target) { afterSent(); }
  });

  // Send over the conversation's socket while it is open (llm_gateway/consumers.py): the same
  // fragment as the HTTP Send, without an HTTP request's fixed cost. Otherwise (socket closed,
  // compare mode, or the server answering "http" for a case the page must handle) the form goes
  // over HTTP through htmx as before. A Send whose answer is lost with the socket is never sent
  // twice: the thread is read again, and the box emptied if the message is in it.
  var socket = null;
  var sending = null;  // the Send waiting for its answer: {ref, text, form, users (count before), timer}
  var nextRef = 1;
  var SEND_WAIT = 20000;

  function sendButton() { return document.getElementById("send-button"); }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || form.id !== "composer") { return; }
    if (form.dataset.http === "1") { delete form.dataset.http; return; }  // handed to htmx on purpose
    if (!socket || socket.state !== "connected" || chat.dataset.compare === "1" || !window.htmx) { return; }
    ev.preventDefault();
    ev.stopPropagation();  // capture phase on the document: htmx's own listener on the form never hears it
    if (sending) { return; }
    var box = form.querySelector("textarea");
    sending = { ref: nextRef++, text: box ? box.value : "", form: form,
                users: document.querySelectorAll("#thread-log .msg-user").length };
    var button = sendButton();
    if (button) { button.disabled = true; }
    sending.timer = setTimeout(sendLost, SEND_WAIT);
    socket.send({ t: "send", ref: sending.ref, text: sending.text }, true);
  }, true);

  function sendAnswered(data) {
    if (!sending || data.ref !== sending.ref) { return; }
    var s = sending;
    sending = null;
    clearTimeout(s.timer);
    if (data.t === "sent") {
      window.htmx.swap(document.getElementById("thread-log"), data.html, { swapStyle: "beforeend" });
      afterSent();
      return;
    }
    updateBusy();
    if (data.t === "refused") {
      var error = document.getElementById("composer-error");
      if (error) { error.textContent = data.error; }  // the text stays in the box
      return;
    }
    s.form.dataset.http = "1";
    s.form.requestSubmit(sendButton() || undefined);
  }

  // The socket closed (or stayed silent) before the Send was answered: stored or not? The
  // thread is read again now, and again when the socket is back if it could not be read.
  var unsure = null;  // the Send whose fate is not known yet
  function sendLost() {
    var s = sending;
    if (!s) { return; }
    sending = null;
    clearTimeout(s.timer);
    unsure = s;
    chat.dataset.unsure = "1";  // until the server has said whether it was stored
    checkUnsure();
  }

  function checkUnsure() {
    var s = unsure;
    if (!s) { return; }
    refreshLog(function (ok) {
      var note = window.CalmaSocket ? window.CalmaSocket.note : function () {};
      if (!ok) { note("chat", label("unsentLabel", "Your message was not sent: it is kept in the box.")); return; }
      if (unsure === s) { unsure = null; delete chat.dataset.unsure; }
      var users = document.querySelectorAll("#thread-log .msg-user .msg-body");
      var last = users.length ? users[users.length - 1].textContent.trim() : null;
      var box = document.querySelector("#composer textarea");
      if (users.length > s.users && last === s.text.trim()) {  // it was stored: not to be sent twice
        if (box && box.value === s.text) { box.value = ""; }
        note("chat", null);
      } else {
        note("chat", label("unsentLabel", "Your message was not sent: it is kept in the box."));
      }
      updateBusy();
    });
  }

  // Enter sends, Shift+Enter makes a new line (not on touch keyboards, where Enter is a newline).
  var coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  document.addEventListener("keydown", function (ev) {
    var box = ev.target;
    if (coarse || ev.key !== "Enter" || ev.shiftKey || ev.isComposing || !box.closest || !box.closest("#composer")) { return; }
    if (box.tagName !== "TEXTAREA") { return; }
    ev.preventDefault();
    var button = document.getElementById("send-button");
    if (button && !button.disabled) { box.form.requestSubmit(button); }
  });

  afterLogChange();
  connect();
})();
