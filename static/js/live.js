// The one reconnecting websocket client of the site (workshop events in app.js, the board in
// discussion.js, the chat in llm_gateway_chat.js), and the one "offline" indicator.
//
//   var s = CalmaSocket.open(path, {
//     name: "board",                        // sets <html data-board="connected|connecting|offline">
//     onopen: function (reconnected) {},    // after every (re)open: re-fetch state if reconnected
//     onmessage: function (data) {},        // parsed JSON
//     ping: function () { return {...}; },  // heartbeat frame, sent every `every` ms while open
//     every: 15000,
//   });
//   s.send(obj)   // sent now, or kept in order and sent when the socket is back
//   s.send(obj, true)  // volatile: sent now or never (presence)
//
// A socket that hears nothing for two heartbeats (a half-dead connection: the laptop's
// Wi-Fi dropped without a close) is treated as lost and reopened; time the page itself was
// frozen or busy does not count as silence. When the browser says it
// is offline, every socket shows "offline" at once and reconnects when it is back online.
// Pages tell the indicator what is waiting with CalmaSocket.note(key, text or null).
(function () {
  "use strict";

  var sockets = [];
  var notes = {};
  var wasOffline = false;
  var leaving = false;  // the page is being left: its sockets close, that is not "offline"
  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("pageshow", function (ev) {
    leaving = false;
    if (ev.persisted) {  // back from the back-forward cache: its sockets are gone
      sockets.forEach(function (s) { if (s.ws) { s.ws.onopen = s.ws.onmessage = s.ws.onclose = null; } s.ws = null; s.connect(); });
    }
  });

  function statusEl() { return document.getElementById("live-status"); }

  function render() {
    var box = statusEl();
    if (!box || leaving) { return; }
    var offline = !navigator.onLine || sockets.some(function (s) {
      return s.state === "offline" || (s.state === "connecting" && s.opened);  // not the first connect
    });
    var queued = sockets.reduce(function (n, s) { return n + s.queue.length; }, 0);
    var lines = [];
    Object.keys(notes).forEach(function (k) { if (notes[k]) { lines.push(notes[k]); } });
    var d = box.dataset;
    var text = box.querySelector(".live-status-text");
    var list = box.querySelector(".live-status-pending");
    if (offline) {
      wasOffline = true;
      box.hidden = false;
      box.classList.add("offline");
      box.classList.remove("back");
      text.textContent = (navigator.onLine ? d.msgReconnecting : d.msgOffline) || "Offline";
      if (queued) { lines.unshift((d.msgQueued || "Changes waiting to be sent: %s").replace("%s", String(queued))); }
      if (!lines.length) { lines.push(d.msgNothing || "Nothing of yours is waiting to be sent."); }
    } else if (wasOffline) {
      wasOffline = false;
      box.hidden = false;
      box.classList.remove("offline");
      box.classList.add("back");
      text.textContent = d.msgBack || "Back online: the page is up to date.";
      setTimeout(function () { if (!box.classList.contains("offline")) { box.hidden = true; box.classList.remove("back"); } }, 4000);
    } else if (!box.classList.contains("back")) {
      box.hidden = !lines.length;
      text.textContent = "";
    }
    list.textContent = "";
    lines.forEach(function (line) { var li = document.createElement("li"); li.textContent = line; list.appendChild(li); });
    document.documentElement.dataset.online = offline ? "0" : "1";
  }

  function Socket(path, opts) {
    this.path = path;
    this.opts = opts || {};
    this.every = this.opts.every || 15000;
    this.queue = [];
    this.backoff = 500;
    this.opened = false;   // opened at least once (a later open is a reconnect)
    this.state = "connecting";
    this.ws = null;
    this.heard = 0;
    this.lastBeat = Date.now();  // when the heartbeat last ran (or was set going): a late beat means a frozen page
    this.timer = null;
    sockets.push(this);
    this.connect();
    var self = this;
    this.beat = setInterval(function () { self.heartbeat(); }, this.every);
  }

  Socket.prototype.setState = function (state) {
    this.state = state;
    if (this.opts.name) { document.documentElement.dataset[this.opts.name] = state; }
    if (this.opts.onstate) { this.opts.onstate(state); }
    render();
  };

  Socket.prototype.connect = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = null;
    if (!navigator.onLine) { this.setState("offline"); return; }  // the "online" event reconnects
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + this.path);
    this.ws = ws;
    this.setState(this.opened ? "connecting" : this.state);
    ws.onopen = function () {
      if (ws !== self.ws) { return; }
      var reconnected = self.opened;
      self.opened = true;
      self.backoff = 500;
      self.heard = Date.now();
      self.setState("connected");
      if (self.opts.onopen) { self.opts.onopen(reconnected); }
      while (self.queue.length && ws.readyState === 1) { ws.send(self.queue.shift()); }
      render();
    };
    ws.onmessage = function (ev) {
      if (ws !== self.ws) { return; }
      self.heard = Date.now();
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (self.opts.onmessage) { self.opts.onmessage(data); }
    };
    ws.onclose = function () { if (ws === self.ws) { self.lost(); } };
  };

  // The connection is gone (closed, or silent too long): show it and try again.
  Socket.prototype.lost = function () {
    if (leaving) { return; }
    var ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch (e) { /* already closed */ }
    }
    this.setState("offline");
    if (this.opts.onclose) { this.opts.onclose(); }
    if (this.timer || !navigator.onLine) { return; }
    var self = this;
    this.timer = setTimeout(function () { self.timer = null; self.connect(); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10000);
  };

  // Silence is counted in time the page was running. A beat that comes late means the page was
  // not (a phone put the tab to sleep; the main thread was busy, e.g. laying out a huge pasted
  // text): the socket could not be heard meanwhile, and messages that arrived may not have been
  // handled yet. That time is not held against the socket, so it is not dropped and re-opened
  // for nothing and a reply on its way (a refusal, an ack) is not lost; a dead connection is
  // still found after two beats and five seconds of running time.
  Socket.prototype.heartbeat = function () {
    var now = Date.now();
    var frozen = Math.max(0, now - this.lastBeat - this.every);
    this.lastBeat = now;
    this.heard = Math.min(now, this.heard + frozen);
    if (!this.ws || this.ws.readyState !== 1) { return; }
    if (now - this.heard > 2 * this.every + 5000) { this.lost(); return; }
    if (this.opts.ping) { this.ws.send(JSON.stringify(this.opts.ping())); }
  };

  // `volatile`: worth sending only now (presence, "I am editing"), dropped when offline.
  Socket.prototype.send = function (obj, volatile) {
    var frame = typeof obj === "string" ? obj : JSON.stringify(obj);
    if (this.ws && this.ws.readyState === 1 && this.state === "connected") { this.ws.send(frame); }
    else if (!volatile) { this.queue.push(frame); render(); }
  };

  window.addEventListener("offline", function () {
    sockets.forEach(function (s) { if (s.ws) { s.lost(); } else { s.setState("offline"); } });
    render();
  });
  window.addEventListener("online", function () {
    sockets.forEach(function (s) { s.backoff = 500; if (!s.ws) { s.connect(); } });
    render();
  });

  window.CalmaSocket = {
    open: function (path, opts) { return new Socket(path, opts); },
    note: function (key, text) { notes[key] = text || null; render(); },
    render: render
  };
})();
