// Discuss stage: the live session page (segments, timer, picks form, affinity map, board).
// No inline script (CSP). Every participant text is put in the DOM with textContent.
(function () {
  "use strict";

  var cfgEl = document.getElementById("discuss-config");
  if (!cfgEl) { return; }
  var cfg = cfgEl.dataset;
  var currentSegment = parseInt(cfg.segment, 10);

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; }
      else if (k === "className") { node.className = attrs[k]; }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  // --- segment changes: the whole page follows the facilitator ----------------------------
  document.addEventListener("calma:event", function (ev) {
    var data = ev.detail || {};
    if (data.kind === "discuss.session" && data.payload && data.payload.segment !== undefined &&
        data.payload.segment !== currentSegment) {
      window.location.reload();
    }
  });

  // --- timer -------------------------------------------------------------------------------------
  function tickTimers() {
    document.querySelectorAll(".timer[data-ends-at]").forEach(function (t) {
      var left = Math.round((Date.parse(t.dataset.endsAt) - Date.now()) / 1000);
      if (left <= 0) { t.textContent = "0:00"; t.classList.add("over"); return; }
      var m = Math.floor(left / 60), s = left % 60;
      t.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    });
  }
  setInterval(tickTimers, 1000);
  tickTimers();

  // --- segment 1: choosing one of my attributes fills the name and definition ----------------
  var defsEl = document.getElementById("attribute-definitions");
  if (defsEl) {
    var defs = JSON.parse(defsEl.textContent);
    document.querySelectorAll(".picks-form fieldset.pick").forEach(function (fs) {
      var i = fs.dataset.pick;
      var select = fs.querySelector("select[name=attribute_" + i + "]");
      var name = fs.querySelector("[name=name_" + i + "]");
      var def = fs.querySelector("[name=definition_" + i + "]");
      if (!select) { return; }
      select.addEventListener("change", function () {
        if (!select.value) { return; }
        name.value = select.options[select.selectedIndex].text;
        if (!def.value) { def.value = defs[select.value] || ""; }
      });
    });
  }

  // --- the board socket (the site's one reconnecting socket client, static/js/live.js) -----
  var Live = {
    socket: null, handlers: [], refs: 0,
    connect: function () {
      var self = this;
      if (this.socket) { return; }
      this.socket = window.CalmaSocket.open(cfg.boardWs, {
        name: "board",
        every: 15000,
        // The heartbeat's answer carries the board's sequence number (missed events show).
        ping: function () { self.refs += 1; return { action: "ping", data: {}, ref: self.refs }; },
        onopen: function (reconnected) { self.emit({ kind: reconnected ? "resync" : "open" }); },
        onclose: function () { self.emit({ kind: "offline" }); },
        onmessage: function (data) { self.emit(data); }
      });
    },
    send: function (action, data) {
      this.connect();
      this.refs += 1;
      // "editing" is presence: only worth sending now; everything else is kept until sent.
      this.socket.send({ action: action, data: data || {}, ref: this.refs }, action === "editing");
      return this.refs;
    },
    on: function (fn) { this.handlers.push(fn); },
    emit: function (msg) { this.handlers.forEach(function (fn) { fn(msg); }); }
  };

  // Plotly interprets a little HTML in text; participant labels must show as typed.
  var esc = window.CalmaText.escape;

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }

  // --- the excerpt picker of a card: search/browse highlights and transcripts, attach ----------
  // Its contents are server-rendered htmx fragments (templates/discussion/excerpt_picker.html);
  // here: open/close, choosing a passage (ticked sentences or a text selection, as offsets in
  // the message text), and sending the choice over the board socket.
  var pickerEl = document.getElementById("excerpt-picker");
  var Picker = null;
  if (pickerEl && window.HTMLDialogElement) {
    var pmsg = pickerEl.dataset;
    var pbody = document.getElementById("picker-body");
    Picker = {
      cardId: null, opener: null, loaded: false, pending: {},
      status: function (text, isError) {
        var s = document.getElementById("picker-status");
        s.textContent = text || "";
        s.classList.toggle("error", !!isError);
      },
      load: function (url) {
        var self = this;
        this.status(pmsg.msgLoading);
        window.htmx.ajax("GET", url, { target: "#picker-body", swap: "innerHTML" }).then(function () { self.status(""); },
          function () { self.status(pmsg.msgFailed, true); });
      },
      open: function (cardId, opener) {
        var card = Board && Board.cards[cardId];
        if (!card) { return; }
        this.cardId = cardId; this.opener = opener || null;
        document.getElementById("picker-card").textContent = card.name;
        this.status("");
        if (!pickerEl.open) { pickerEl.showModal(); }
        if (!this.loaded) { this.loaded = true; this.load(pmsg.url); }
        var first = pbody.querySelector("#picker-q, .sent, button");
        if (first) { first.focus(); }
      },
      close: function () { if (pickerEl.open) { pickerEl.close(); } },
      cardChanged: function (card) {
        if (card.id === this.cardId) { document.getElementById("picker-card").textContent = card.name; }
      },
      attached: function (p) {
        if (!pickerEl.open || p.id !== this.cardId) { return; }
        this.status(pmsg.msgAttached);
        var button = this.pending[p.ref];
        delete this.pending[p.ref];
        if (button && button.dataset.attachPassage) { this.clear(button.closest(".picker-msg")); }
      },
      failed: function (p) {
        if (!pickerEl.open) { return; }
        this.status(p.reason, true);
        var button = this.pending[p.ref];
        delete this.pending[p.ref];
        if (button) { button.disabled = false; }
      },
      send: function (button, data) {
        if (!Board || !Board.cards[this.cardId]) { this.status(pmsg.msgGone, true); return; }
        data.id = this.cardId;
        var ref = Live.send("card.example", data);
        this.pending[ref] = button;
        button.disabled = true;
        // Re-enabled when the answer comes, or after a while if the socket is down.
        setTimeout(function () { if (button.dataset.attachAnnotation) { button.disabled = false; } }, 3000);
      },
      // A passage of one message: the browser's selection if it lies inside the message text,
      // otherwise the ticked sentences from the first to the last. Offsets count characters of
      // the text as shown (every character of the message is inside one sentence span).
      offsetOf: function (textEl, node, offset) {
        var r = document.createRange();
        r.setStart(textEl, 0);
        r.setEnd(node, offset);
        return r.toString().length;
      },
      selectionIn: function (textEl) {
        var sel = window.getSelection();
        if (!sel || sel.isCollapsed || !sel.rangeCount) { return null; }
        var range = sel.getRangeAt(0);
        if (!textEl.contains(range.startContainer) || !textEl.contains(range.endContainer)) { return null; }
        var start = this.offsetOf(textEl, range.startContainer, range.startOffset);
        var end = this.offsetOf(textEl, range.endContainer, range.endOffset);
        return end > start ? { start: start, end: end } : null;
      },
      ticked: function (textEl) {
        var on = textEl.querySelectorAll('.sent[aria-checked="true"]');
        if (!on.length) { return null; }
        return { start: parseInt(on[0].dataset.s, 10), end: parseInt(on[on.length - 1].dataset.e, 10) };
      },
      passage: function (msgEl) {
        var textEl = msgEl.querySelector(".picker-text");
        return this.selectionIn(textEl) || this.ticked(textEl);
      },
      refresh: function (msgEl) {
        var textEl = msgEl.querySelector(".picker-text");
        var range = this.ticked(textEl);
        textEl.querySelectorAll(".sent").forEach(function (s) {
          var inside = range && parseInt(s.dataset.s, 10) >= range.start && parseInt(s.dataset.e, 10) <= range.end;
          s.classList.toggle("in-passage", !!inside);
        });
        var chosen = this.passage(msgEl);
        var preview = msgEl.querySelector(".picker-preview");
        var button = msgEl.querySelector("[data-attach-passage]");
        if (chosen) {
          var text = textEl.textContent.slice(chosen.start, chosen.end).trim();
          preview.textContent = pmsg.msgChosen + " “" + (text.length > 160 ? text.slice(0, 157) + "…" : text) + "”";
        } else {
          preview.textContent = "";
        }
        button.disabled = !chosen;
      },
      clear: function (msgEl) {
        if (!msgEl) { return; }
        msgEl.querySelectorAll('.sent[aria-checked="true"]').forEach(function (s) { s.setAttribute("aria-checked", "false"); });
        var sel = window.getSelection();
        if (sel && !sel.isCollapsed && msgEl.contains(sel.anchorNode)) { sel.removeAllRanges(); }
        this.refresh(msgEl);
      },
      toggle: function (sent) {
        sent.setAttribute("aria-checked", sent.getAttribute("aria-checked") === "true" ? "false" : "true");
        this.refresh(sent.closest(".picker-msg"));
      }
    };
    document.getElementById("picker-close").addEventListener("click", function () { Picker.close(); });
    pickerEl.addEventListener("close", function () {
      if (Picker.opener && document.body.contains(Picker.opener)) { Picker.opener.focus(); }
      else { var c = document.getElementById("card-" + Picker.cardId); if (c) { var b = c.querySelector(".card-actions button"); if (b) { b.focus(); } } }
    });
    pickerEl.addEventListener("click", function (ev) {
      if (ev.target === pickerEl) { Picker.close(); return; }  // a click on the backdrop
      var sent = ev.target.closest(".sent");
      if (sent) {
        var sel = window.getSelection();
        if (sel && !sel.isCollapsed) { return; }  // the end of a text selection, not a tick
        Picker.toggle(sent);
        return;
      }
      var b = ev.target.closest("[data-attach-annotation]");
      if (b) { Picker.send(b, { annotation: parseInt(b.dataset.attachAnnotation, 10) }); return; }
      b = ev.target.closest("[data-attach-passage]");
      if (b) {
        var chosen = Picker.passage(b.closest(".picker-msg"));
        if (chosen) { Picker.send(b, { message: parseInt(b.dataset.attachPassage, 10), start: chosen.start, end: chosen.end }); }
      }
    });
    pickerEl.addEventListener("keydown", function (ev) {
      var sent = ev.target.closest && ev.target.closest(".sent");
      if (sent && (ev.key === " " || ev.key === "Enter")) { ev.preventDefault(); Picker.toggle(sent); }
    });
    document.addEventListener("selectionchange", function () {
      if (!pickerEl.open) { return; }
      var sel = window.getSelection();
      var node = sel && sel.anchorNode;
      var msgEl = node && (node.nodeType === 1 ? node : node.parentElement).closest(".picker-msg");
      pickerEl.querySelectorAll(".picker-msg").forEach(function (m) { if (m === msgEl || m.querySelector(".picker-preview").textContent) { Picker.refresh(m); } });
    });
    pickerEl.addEventListener("htmx:afterSwap", function (ev) {
      if (ev.detail.target !== pbody) { return; }
      var focus = pbody.querySelector(".picker-msg[data-focus]");
      var target = focus ? focus.querySelector(".sent") : pbody.querySelector("#picker-q, .picker-back");
      if (focus) { focus.scrollIntoView({ block: "center" }); }
      if (target) { target.focus({ preventScroll: !!focus }); }
    });
  }

  // --- the board ------------------------------------------------------------------------------
  // Cards, the vote tally and the group ranking are rendered by the server (the partials of
  // templates/discussion/board.html): in the page, in the board's HTTP state (a re-sync) and,
  // once per change, in the broadcast. Here: putting that HTML in place (a whole card, or a text
  // edit's name/definition/meta by their ids, out of band), and what only this browser knows —
  // its own edit draft and conflict choice, who else is editing (presence), an observer's view
  // without controls, the vote/ranking places, and the sequence numbers that show a missed event.
  var boardEl = document.getElementById("board");
  var Board = null;
  if (boardEl) {
    var notices = {};
    var noticeTpl = document.getElementById("board-notices");
    var limits = {};  // characters per field, the services' own (data-max of the too-long notices)
    if (noticeTpl) {
      noticeTpl.content.querySelectorAll("[data-notice]").forEach(function (n) {
        notices[n.dataset.notice] = n.textContent.trim();
        if (n.dataset.max) { limits[n.dataset.notice.replace("too-long-", "")] = parseInt(n.dataset.max, 10); }
      });
    }
    // A text over its limit (a field's maxlength taken off, a paste the browser let through) is
    // not sent: the server would refuse it anyway, and a huge frame only costs the page time.
    // Says why in the board's status line and at the field (focused; the browser reads the
    // message out), and the text stays where it was typed. Counted as the server counts: code
    // points of the trimmed text.
    function tooLong(form) {
      var over = Array.prototype.filter.call(form.elements, function (f) {
        return limits[f.name] && Array.from((f.value || "").trim()).length > limits[f.name];
      })[0];
      if (!over) { return false; }
      var message = notices["too-long-" + over.name];
      Board.refused(message);  // called from the board's handlers only: Board is set
      over.setCustomValidity(message);
      over.reportValidity();
      over.addEventListener("input", function () { over.setCustomValidity(""); }, { once: true });
      return true;
    }
    var observer = cfg.role === "researcher";
    var box = document.getElementById("cards");
    // Server HTML (escaped by Django's templates) into nodes; no script runs from it.
    var fragment = function (html) { var t = document.createElement("template"); t.innerHTML = html || ""; return t.content; };
    var fill = function (target, html) { if (target) { target.replaceChildren(fragment(html)); } };
    Board = {
      cards: {}, order: [], present: [], drafts: {}, conflicts: {}, ranking: [], myVote: [],
      loadSeq: 0,
      boardSeq: 0,  // the board's sequence number this screen is up to date with
      load: function () {
        var self = this;
        var seq = ++this.loadSeq;
        return getJSON(cfg.stateUrl).then(function (state) {
          if (seq !== self.loadSeq) { return; }  // a newer snapshot was asked for
          self.boardSeq = state.seq || 0;
          document.documentElement.dataset.boardSeq = String(self.boardSeq);
          fill(box, state.html.cards);
          fill(document.getElementById("vote-tally"), state.html.tally);
          fill(document.getElementById("final-ranking"), state.html.ranking);
          self.present = state.present; self.ranking = state.ranking; self.myVote = state.my_vote;
          self.loaded = true;
          self.changed(true);
          if (state.job && window.CalmaMap) { window.CalmaMap.job(state.job); }
        });
      },
      // The cards on screen, read from the server's markup (names for the places, the merge
      // dialog, the picker and the map's "attach to card").
      reindex: function () {
        var self = this;
        this.cards = {}; this.order = [];
        box.querySelectorAll(".axis-card").forEach(function (node) {
          var id = parseInt(node.dataset.cardId, 10);
          var def = node.querySelector(".card-definition");
          self.order.push(id);
          self.cards[id] = { id: id, name: node.querySelector(".card-name").textContent, definition: def ? def.textContent : "",
                             by: node.dataset.by, version: parseInt(node.dataset.version, 10) };
        });
      },
      changed: function (all) {
        var self = this;
        this.reindex();
        box.querySelectorAll(".axis-card").forEach(function (node) { self.decorate(node); });
        this.renderEmpty(); this.renderPresence(); this.renderPlaces(); this.mergesStale(all);
        document.dispatchEvent(new CustomEvent("calma:cards", { detail: this.cardList() }));
      },
      cardList: function () { var self = this; return this.order.map(function (id) { return self.cards[id]; }).filter(Boolean); },
      // A whole card from the server (new, or changed in more than its text).
      applyCard: function (card, html) {
        var known = this.cards[card.id];
        if (known && card.version < known.version) { return; }  // an older change replayed after a newer snapshot
        if (card.status !== "active") { this.remove(card.id); return; }
        if (!html) { this.resync(); return; }
        var node = fragment(html).firstElementChild;
        var old = document.getElementById("card-" + card.id);
        if (old) {
          var open = Array.prototype.map.call(old.querySelectorAll("details"), function (d) { return d.open; });
          node.querySelectorAll("details").forEach(function (d, i) { if (open[i]) { d.open = true; } });
          old.replaceWith(node);
        } else {
          box.appendChild(node);
        }
        if (Picker) { Picker.cardChanged(card); }
        this.changed(false);
      },
      // A text edit: the elements of the HTML replace their namesakes (out-of-band swap by id).
      applyText: function (card, html) {
        var known = this.cards[card.id];
        if (!known) { this.resync(); return; }
        if (card.version < known.version) { return; }
        var frag = fragment(html);
        Array.prototype.slice.call(frag.children).forEach(function (n) {
          var old = n.id && document.getElementById(n.id);
          if (old) { n.hidden = old.hidden; old.replaceWith(n); }
        });
        document.getElementById("card-" + card.id).dataset.version = String(card.version);
        if (Picker) { Picker.cardChanged(card); }
        this.changed(false);
      },
      remove: function (id) {
        var node = document.getElementById("card-" + id);
        if (node) { node.remove(); }
        delete this.drafts[id]; delete this.conflicts[id];
        this.changed(false);
      },
      renderEmpty: function () {
        var empty = box.querySelector(".empty");
        if (!this.order.length && !empty) { box.appendChild(el("p", { className: "empty muted", text: notices.none })); }
        if (this.order.length && empty) { empty.remove(); }
      },
      // What this browser adds to a card: no controls for an observer; its own draft and
      // conflict choice while editing.
      decorate: function (node) {
        var id = parseInt(node.dataset.cardId, 10);
        if (observer) { node.querySelectorAll("[data-controls]").forEach(function (c) { c.remove(); }); }
        var draft = this.drafts[id];
        var def = node.querySelector(".card-definition");
        var actions = node.querySelector(".card-actions");
        var editor = node.querySelector(".card-editor");
        var conflict = node.querySelector(".conflict");
        if (def) { def.hidden = !!draft; }
        if (actions) { actions.style.display = draft ? "none" : ""; }  // .card-actions is display: flex (the hidden attribute would lose)
        if (!draft) {
          if (editor) { editor.remove(); }
          if (conflict) { conflict.remove(); }
          return;
        }
        if (!editor) {
          editor = this.editor(id, draft);
          node.insertBefore(editor, def || node.querySelector(".meta"));
        }
        var c = this.conflicts[id];
        if (c && !conflict) { editor.after(this.conflictBox(c)); }
        if (!c && conflict) { conflict.remove(); }
      },
      editor: function (id, draft) {
        var form = document.getElementById("card-editor-tpl").content.firstElementChild.cloneNode(true);
        form.dataset.cardId = String(id);
        form.querySelectorAll("[data-id]").forEach(function (f) { f.id = f.dataset.id + "-" + id; });
        form.querySelectorAll("[data-for]").forEach(function (l) { l.htmlFor = l.dataset.for + "-" + id; });
        form.elements.name.value = draft.name;
        form.elements.definition.value = draft.definition;
        return form;
      },
      conflictBox: function (conflict) {
        var node = document.getElementById("card-conflict-tpl").content.firstElementChild.cloneNode(true);
        var put = function (field, text) { node.querySelector('[data-field="' + field + '"]').textContent = text; };
        put("theirs-name", conflict.current.name); put("theirs-definition", conflict.current.definition);
        put("yours-name", conflict.yours.name); put("yours-definition", conflict.yours.definition);
        return node;
      },
      node: function (id) { return document.getElementById("card-" + id); },
      startEdit: function (id) {
        var card = this.cards[id];
        if (!card) { return; }
        this.drafts[id] = { name: card.name, definition: card.definition, version: card.version };
        Live.send("editing", { id: id });
        this.decorate(this.node(id));
        var f = document.getElementById("edit-name-" + id);
        if (f) { f.focus(); }
      },
      stopEdit: function (id) {
        delete this.drafts[id];
        delete this.conflicts[id];
        Live.send("editing", { id: null });
        var node = this.node(id);
        if (node) { this.decorate(node); }
      },
      // The "Merge into…" lists name every other card: filled when a card is (re)rendered; the
      // other cards' lists are brought up to date when opened (focus or pointer), not on every
      // change of every card (a board of N cards would rebuild N² options per change).
      mergesStale: function (all) {
        var self = this;
        box.querySelectorAll("select[data-card-merge]").forEach(function (s) {
          if (all || !s.dataset.filled) { self.fillMerge(s); } else { s.dataset.stale = "1"; }
        });
      },
      fillMerge: function (sel) {
        var self = this;
        var own = parseInt(sel.closest(".axis-card").dataset.cardId, 10);
        var keep = sel.value;
        while (sel.options.length > 1) { sel.remove(1); }
        this.order.forEach(function (id) { if (id !== own) { sel.appendChild(el("option", { value: String(id), text: self.cards[id].name })); } });
        sel.value = keep;
        sel.dataset.filled = "1";
        delete sel.dataset.stale;
      },
      confirmMerge: function (fromId, intoId, opener) {
        var dlg = document.getElementById("merge-confirm");
        var from = this.cards[fromId], into = this.cards[intoId];
        if (!dlg || !from || !into) { if (opener) { opener.value = ""; } return; }
        document.getElementById("merge-from").textContent = from.name;
        document.getElementById("merge-from-by").textContent = "(" + notices.by + " " + (from.by || "?") + ")";
        document.getElementById("merge-into").textContent = into.name;
        document.getElementById("merge-into-by").textContent = "(" + notices.by + " " + (into.by || "?") + ")";
        this.merging = { from: fromId, into: intoId, opener: opener };
        dlg.showModal();
        document.getElementById("merge-cancel").focus();  // the safe choice has the focus
      },
      mergeClosed: function (confirmed) {
        var m = this.merging;
        this.merging = null;
        if (!m) { return; }
        if (confirmed) {
          if (!this.cards[m.from] || !this.cards[m.into]) { this.status(notices["merge-gone"], true); }
          else { Live.send("card.merge", { ids: [m.from], into: m.into, confirm: true }); }
        }
        var sel = document.getElementById("merge-" + m.from);
        if (sel) { sel.value = ""; sel.focus(); }
      },
      editorsOf: function (id) {
        return this.present.filter(function (p) { return p.editing === id && p.who !== cfg.me; }).map(function (p) { return p.who; });
      },
      renderPresence: function () {
        var p = document.getElementById("board-presence");
        p.textContent = "";
        this.present.forEach(function (person) {
          p.appendChild(el("span", { className: "chip person" + (person.who === cfg.me ? " me" : ""), text: person.who }));
        });
        var self = this;
        this.order.forEach(function (id) {
          var node = self.node(id);
          if (!node) { return; }
          var badge = node.querySelector("header .editing");
          var editors = self.editorsOf(id);
          if (badge) { badge.remove(); }
          if (editors.length) { node.querySelector("header").appendChild(el("span", { className: "badge warn editing", text: editors.join(", ") + " · " + notices.editing })); }
        });
      },
      renderPlaces: function () {
        var self = this;
        if (!this.loaded) { return; }  // the places need my vote: from the first snapshot on
        [["vote-places", this.myVote, "vote"], ["ranking-places", this.ranking.map(function (r) { return r.id; }), "rank"]].forEach(function (spec) {
          var placeBox = document.getElementById(spec[0]);
          if (!placeBox) { return; }
          var current = [];
          placeBox.querySelectorAll("select").forEach(function (s) { current.push(s.value); });
          if (!current.length) { current = spec[1].map(String); }
          placeBox.textContent = "";
          for (var i = 1; i <= 5; i++) {
            var id = spec[2] + "-place-" + i;
            var sel = el("select", { id: id, name: "place" + i });
            sel.appendChild(el("option", { value: "", text: "—" }));
            self.order.forEach(function (cid) { sel.appendChild(el("option", { value: String(cid), text: self.cards[cid].name })); });
            sel.value = self.cards[current[i - 1]] ? current[i - 1] : "";
            placeBox.appendChild(el("div", { className: "place" }, [el("label", { "for": id, text: String(i) + (i <= 3 ? " ★" : "") }), sel]));
          }
        });
      },
      placesOf: function (boxId) {
        var ids = [];
        document.querySelectorAll("#" + boxId + " select").forEach(function (s) { if (s.value) { ids.push(parseInt(s.value, 10)); } });
        return ids;
      },
      status: function (text, isError) {
        var s = document.getElementById("board-status");
        s.textContent = text || "";
        s.classList.toggle("error", !!isError);
      },
      // A command of this member went through: a refusal shown for an earlier one is no longer true.
      // Only a command sent after the refusal was shown: the answer to one sent before it (the
      // "editing" notice's ack still on its way) must not wipe the refusal off the screen.
      refusedRef: 0,
      refused: function (text, ref) {
        this.refusedRef = typeof ref === "number" ? ref : Live.refs;
        this.status(text, true);
      },
      succeeded: function (p) {
        if (p && typeof p.ref === "number" && p.ref <= this.refusedRef) { return; }
        if (document.getElementById("board-status").classList.contains("error")) { this.status(""); }
      },
      handle: function (m) {
        var p = m.payload || {};
        switch (m.kind) {
          case "offline": this.status(notices.offline, true); break;
          case "card": this.applyCard(p.card, p.html); break;
          case "card_text": this.applyText(p.card, p.html); break;
          case "card_removed":
            if (this.merging && (this.merging.from === p.id || this.merging.into === p.id)) {
              document.getElementById("merge-confirm").close();
              this.status(notices["merge-gone"], true);
            }
            this.remove(p.id);
            break;
          case "merged": this.status(notices.merged); break;
          case "unmerged": this.status(notices.unmerged); break;
          case "presence":
            this.present = this.present.filter(function (x) { return x.who !== p.who; });
            if (p.here) { this.present.push({ who: p.who, editing: p.editing }); }
            this.present.sort(function (a, b) { return a.who < b.who ? -1 : 1; });
            this.renderPresence();
            break;
          case "votes": fill(document.getElementById("vote-tally"), p.html); break;
          case "voted": this.status(notices.voted); break;
          case "ranking":
            this.ranking = p.ranking || [];
            fill(document.getElementById("final-ranking"), p.html);
            this.renderPlaces();
            break;
          case "saved":  // the ack carries the saved text: shown even if the broadcast never comes
            if (p.card && p.html && this.cards[p.id]) { this.applyText(p.card, p.html); }
            this.stopEdit(p.id);
            this.succeeded(p);
            break;
          case "created": if (p.card) { this.applyCard(p.card, p.html); } this.succeeded(p); break;
          case "ack": this.succeeded(p); break;
          case "conflict":
            var id = p.current.id;
            this.conflicts[id] = p;
            if (this.drafts[id]) { this.drafts[id].version = p.current.version; }
            var cnode = this.node(id);
            if (cnode) { var old = cnode.querySelector(".conflict"); if (old) { old.remove(); } this.decorate(cnode); }
            break;
          case "error":
            this.refused(p.reason, p.ref);
            if (Picker) { Picker.failed(p); }
            if (p.action === "card.unmerge") { box.querySelectorAll("[data-unmerge]").forEach(function (b) { b.disabled = false; }); }
            break;
          case "example_added": if (Picker) { Picker.attached(p); } break;
          case "job": if (window.CalmaMap) { window.CalmaMap.job(p); } break;
        }
      }
    };
    // Every board event carries the board's sequence number; replies (acks, the heartbeat's
    // pong) carry the current one. An event that skips a number, or a reply ahead of this
    // screen for longer than a moment, means events were lost (e.g. Redis restarted): the
    // board is re-fetched over HTTP.
    var REPLIES = { pong: 1, ack: 1, saved: 1, created: 1, voted: 1, example_added: 1, conflict: 1, error: 1, hello: 1,
                    merged: 1, unmerged: 1 };
    Board.receive = function (m) {
      if (REPLIES[m.kind]) {
        this.handle(m);
        if (typeof m.seq === "number") { this.expect(m.seq); }
        return;
      }
      if (typeof m.seq === "number") {
        if (m.seq <= this.boardSeq) { return; }  // already in the snapshot
        if (m.seq > this.boardSeq + 1) { this.resync(); this.pending.push(m); return; }  // a gap
        this.boardSeq = m.seq;
        document.documentElement.dataset.boardSeq = String(m.seq);
      }
      this.handle(m);
    };
    Board.expect = function (target) {
      var self = this;
      if (target <= this.boardSeq) { return; }
      // Events may still be on their way: give them a moment before re-fetching.
      setTimeout(function () { if (self.boardSeq < target) { self.resync(); } }, 1500);
    };
    // Subscribe first, then load the snapshot; changes that arrive while it loads are kept and
    // replayed on top of it, so nothing between the snapshot and the subscription is lost.
    Board.pending = null;
    Board.resync = function () {
      var self = this;
      if (this.pending) { return; }
      this.pending = [];
      this.load().then(function () {
        var queued = self.pending || [];
        self.pending = null;
        queued.sort(function (a, b) { return (a.seq || 0) - (b.seq || 0); });
        queued.forEach(function (m) { self.receive(m); });
      }, function () { self.pending = null; });
    };
    Live.on(function (m) {
      if (m.kind === "open" || m.kind === "resync") { Board.status(""); Board.resync(); return; }
      if (Board.pending && m.kind !== "offline" && m.kind !== "error") { Board.pending.push(m); return; }
      Board.receive(m);
    });

    var mergeDlg = document.getElementById("merge-confirm");
    if (mergeDlg) {
      mergeDlg.addEventListener("close", function () { Board.mergeClosed(mergeDlg.returnValue === "merge"); mergeDlg.returnValue = ""; });
      document.getElementById("merge-go").addEventListener("click", function () { mergeDlg.close("merge"); });
      document.getElementById("merge-cancel").addEventListener("click", function () { mergeDlg.close("cancel"); });
      mergeDlg.addEventListener("click", function (ev) { if (ev.target === mergeDlg) { mergeDlg.close("cancel"); } });
    }
    var newCard = document.getElementById("card-new");
    if (newCard) newCard.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = ev.target;
      if (!f.elements.name.value.trim() || tooLong(f)) { return; }
      // The text stays until the card is made: a refusal (a cap, the rate) keeps what was typed.
      newCardRef = Live.send("card.create", { name: f.elements.name.value, definition: f.elements.definition.value });
    });
    var newCardRef = null;
    Live.on(function (m) {
      if (newCard && newCardRef !== null && m.kind === "created" && m.payload && m.payload.ref === newCardRef) {
        newCard.reset();
        newCardRef = null;
      }
    });
    boardEl.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-pick-card]");
      if (!b) { return; }
      Live.send("card.create", { name: b.dataset.name, definition: b.dataset.definition, pick: parseInt(b.dataset.pickCard, 10) });
      b.disabled = true;
    });
    var voteForm = document.getElementById("vote-form");
    if (voteForm) {
      voteForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        Board.myVote = Board.placesOf("vote-places");
        Live.send("vote", { ids: Board.myVote });
      });
    }
    var rankingForm = document.getElementById("ranking-form");
    if (rankingForm) {
      rankingForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        Live.send("ranking", { ids: Board.placesOf("ranking-places") });
      });
    }
    // The cards' controls: one listener each for the whole board (cards come and go as HTML).
    box.addEventListener("click", function (ev) {
      var node = ev.target.closest(".axis-card");
      if (!node) { return; }
      var id = parseInt(node.dataset.cardId, 10);
      var b = ev.target.closest("[data-card-action]");
      if (b) {
        var card = Board.cards[id];
        switch (b.dataset.cardAction) {
          case "edit": Board.startEdit(id); break;
          case "excerpt": if (Picker) { Picker.open(id, b); } break;
          case "split":
            var names = window.prompt(notices["split-names"], card.name + " (1)\n" + card.name + " (2)");
            if (!names) { return; }
            var parts = names.split(/\n|;/).map(function (s) { return s.trim(); }).filter(Boolean)
              .map(function (n) { return { name: n, definition: card.definition }; });
            Live.send("card.split", { id: id, parts: parts });
            break;
          case "remove": if (window.confirm(notices["confirm-remove"])) { Live.send("card.remove", { id: id }); } break;
        }
        return;
      }
      b = ev.target.closest("[data-unmerge]");
      if (b) { b.disabled = true; Live.send("card.unmerge", { event: parseInt(b.dataset.unmerge, 10) }); return; }
      if (ev.target.closest(".card-editor .cancel")) { Board.stopEdit(id); return; }
      b = ev.target.closest("[data-conflict]");
      if (b) {
        var c = Board.conflicts[id];
        if (!c) { return; }
        if (b.dataset.conflict === "mine") {
          Live.send("card.update", { id: id, name: c.yours.name, definition: c.yours.definition, version: c.current.version });
          Board.drafts[id] = { name: c.yours.name, definition: c.yours.definition, version: c.current.version };
        } else {
          Board.stopEdit(id);
        }
      }
    });
    box.addEventListener("change", function (ev) {
      var sel = ev.target.closest("select[data-card-merge]");
      // Nothing is merged until the person confirms, in a dialog that names both cards.
      if (sel && sel.value) { Board.confirmMerge(parseInt(sel.closest(".axis-card").dataset.cardId, 10), parseInt(sel.value, 10), sel); }
    });
    ["focusin", "pointerdown"].forEach(function (type) {
      box.addEventListener(type, function (ev) {
        var sel = ev.target.closest && ev.target.closest("select[data-card-merge][data-stale]");
        if (sel) { Board.fillMerge(sel); }
      });
    });
    box.addEventListener("input", function (ev) {
      var form = ev.target.closest(".card-editor");
      var draft = form && Board.drafts[parseInt(form.dataset.cardId, 10)];
      if (draft) { draft.name = form.elements.name.value; draft.definition = form.elements.definition.value; }
    });
    box.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (form.matches(".card-editor")) {
        ev.preventDefault();
        var id = parseInt(form.dataset.cardId, 10);
        var draft = Board.drafts[id];
        if (draft && !tooLong(form)) {
          Live.send("card.update", { id: id, name: draft.name, definition: draft.definition, version: draft.version });
        }
      } else if (form.matches(".comment-form")) {
        ev.preventDefault();
        var input = form.querySelector("input");
        if (!input.value.trim() || tooLong(form)) { return; }
        Live.send("card.comment", { id: parseInt(form.dataset.comment, 10), text: input.value });
        input.value = "";
      }
    });
    Board.changed(true);  // the cards the page came with
    Board.load();  // up to date at once; the socket's "open" re-syncs it
    Live.connect();
  }

  // --- the affinity map ------------------------------------------------------------------------
  var mapEl = document.getElementById("affinity-map");
  if (mapEl) {
    var palette = ["#0b57d0", "#b3261e", "#1b6e2e", "#8a4b00", "#6a1b9a", "#00796b", "#c2185b", "#455a64", "#5d4037", "#827717"];
    var CalmaMap = {
      data: null, selected: null, cards: [],
      load: function () {
        var self = this;
        return getJSON(cfg.mapUrl).then(function (data) { self.data = data; self.fillParticipants(); self.render(); self.job(data.job || {}); self.embedding(data.embedding); });
      },
      embedding: function (e) {
        // Facilitators only (the element is in their page): which embedding placed this map, and what it means.
        var p = document.getElementById("map-embedding");
        if (!p) { return; }
        if (!e || !e.title) { p.hidden = true; return; }
        var meaning = e.multilingual ? p.dataset.multi : (e.several_languages ? p.dataset.englishMixed : p.dataset.english);
        p.textContent = p.dataset.title + " " + e.title + ". " + meaning;
        p.hidden = false;
      },
      fillParticipants: function () {
        var sel = document.getElementById("map-participant");
        var keep = sel.value;
        while (sel.options.length > 1) { sel.remove(1); }
        this.data.participants.forEach(function (p) { sel.appendChild(el("option", { value: p, text: p })); });
        sel.value = keep;
      },
      filters: function () {
        return {
          q: window.CalmaText.normalize(document.getElementById("map-search").value),
          who: document.getElementById("map-participant").value,
          kind: document.getElementById("map-kind").value,
          mine: document.getElementById("map-mine").checked,
          clusters: document.getElementById("map-clusters").checked
        };
      },
      visible: function (pt, f) {
        if (f.who && pt.users.indexOf(f.who) < 0) { return false; }
        if (f.kind && pt.kind !== f.kind) { return false; }
        if (f.mine && !pt.mine) { return false; }
        return true;
      },
      render: function () {
        var self = this;
        var f = this.filters();
        var pts = (this.data.points || []).filter(function (pt) { return self.visible(pt, f); });
        var list = document.getElementById("map-list");
        list.textContent = "";
        pts.forEach(function (pt) { list.appendChild(el("li", { className: "user-text", text: pt.label + " — " + pt.users.join(", ") })); });
        if (!this.data.points || !this.data.points.length) {
          mapEl.textContent = mapEl.dataset.empty;
          mapEl.classList.add("empty");
          return;
        }
        mapEl.classList.remove("empty");
        if (!window.Plotly) { return; }
        var small = mapEl.clientWidth < 600;
        var traces = [];
        ["code", "attribute"].forEach(function (kind) {
          var sub = pts.filter(function (p) { return p.kind === kind; });
          if (!sub.length) { return; }
          var hit = function (p) { return f.q && window.CalmaText.normalize(p.label).indexOf(f.q) >= 0; };
          traces.push({
            type: "scatter",
            mode: sub.length > 300 ? "markers" : "markers+text",
            name: kind === "code" ? mapEl.dataset.labelCode : mapEl.dataset.labelAttribute,
            x: sub.map(function (p) { return p.x; }), y: sub.map(function (p) { return p.y; }),
            text: sub.map(function (p) { return esc(p.label); }),
            customdata: sub.map(function (p) { return p.key; }),
            textposition: "top center",
            textfont: { size: small ? 10 : 13 },
            hovertemplate: sub.map(function (p) {
              return "<b>%{text}</b><br>" + mapEl.dataset.by + " " + p.users.join(", ") + "<extra></extra>";
            }),
            marker: {
              symbol: kind === "code" ? "circle" : "diamond",
              size: sub.map(function (p) { return (hit(p) ? 16 : 9) + (kind === "attribute" ? 3 : 0); }),
              color: sub.map(function (p) {
                if (f.q) { return hit(p) ? "#d93025" : "#c9ced6"; }
                if (f.clusters && p.cluster !== null) { return palette[p.cluster % palette.length]; }
                if (f.clusters) { return "#9aa0a6"; }
                return kind === "code" ? "#0b57d0" : "#1b6e2e";
              }),
              line: { width: sub.map(function (p) { return p.mine ? 2 : 0; }), color: "#1a1a1a" }
            }
          });
        });
        var layout = {
          margin: { l: 10, r: 10, t: 10, b: 10 }, hovermode: "closest", showlegend: true,
          legend: { orientation: "h" }, dragmode: "pan",
          xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" },
          height: small ? 420 : 620, font: { size: small ? 11 : 14 }
        };
        window.Plotly.react(mapEl, traces, layout, { responsive: true, displaylogo: false, scrollZoom: true });
        if (!mapEl.dataset.bound) {
          mapEl.dataset.bound = "1";
          mapEl.on("plotly_click", function (ev) { if (ev.points && ev.points[0]) { self.show(ev.points[0].customdata); } });
          mapEl.on("plotly_hover", function (ev) { if (ev.points && ev.points[0] && !small) { self.show(ev.points[0].customdata); } });
        }
      },
      show: function (key) {
        var pt = (this.data.points || []).filter(function (p) { return p.key === key; })[0];
        if (!pt) { return; }
        this.selected = pt;
        document.getElementById("map-detail").hidden = false;
        document.getElementById("map-detail-label").textContent = pt.label;
        document.getElementById("map-detail-meta").textContent = (pt.kind === "code" ? mapEl.dataset.labelCode : mapEl.dataset.labelAttribute) + " · " + mapEl.dataset.by + " " + pt.users.join(", ");
        var defs = document.getElementById("map-detail-defs");
        defs.textContent = "";
        pt.definitions.forEach(function (d) { defs.appendChild(el("li", { className: "user-text", text: d })); });
        var ex = document.getElementById("map-detail-excerpts");
        ex.textContent = "";
        var canAttach = Board && this.cards.length;
        pt.excerpts.forEach(function (e) {
          var li = el("li", {}, [el("span", { className: "user-text", text: "“" + e.excerpt + "” " })]);
          if (canAttach && e.annotation) {
            var b = el("button", { type: "button", className: "link", text: mapEl.dataset.attachExcerpt });
            b.addEventListener("click", function () {
              var sel = document.getElementById("map-attach-card");
              if (sel.value) { Live.send("card.example", { id: parseInt(sel.value, 10), annotation: e.annotation }); b.disabled = true; }
            });
            li.appendChild(b);
          }
          ex.appendChild(li);
        });
        this.renderAttach();
      },
      renderAttach: function () {
        var box = document.getElementById("map-attach");
        if (!Board || !this.selected || !this.cards.length) { box.hidden = true; return; }
        box.hidden = false;
        var sel = document.getElementById("map-attach-card");
        var keep = sel.value;
        sel.textContent = "";
        this.cards.forEach(function (c) { sel.appendChild(el("option", { value: String(c.id), text: c.name })); });
        if (keep) { sel.value = keep; }
      },
      job: function (job) {
        var bar = document.getElementById("map-progress");
        var status = document.getElementById("map-status");
        if (!job || !job.status) { return; }
        if (job.status === "queued" || job.status === "running") {
          bar.hidden = false; bar.value = job.progress || 0;
          status.textContent = "⏳ " + (job.progress || 0) + "% " + (job.message || "");
          this.waiting = true;
        } else {
          bar.hidden = true;
          status.textContent = job.status === "failed" ? "⚠ " + (job.message || "") : "";
          if (job.status === "done" && this.waiting) { this.waiting = false; this.load(); }
        }
      }
    };
    window.CalmaMap = CalmaMap;
    ["map-search", "map-participant", "map-kind", "map-mine", "map-clusters"].forEach(function (id) {
      document.getElementById(id).addEventListener(id === "map-search" ? "input" : "change", function () { CalmaMap.render(); });
    });
    document.addEventListener("calma:cards", function (ev) { CalmaMap.cards = ev.detail; CalmaMap.renderAttach(); });
    document.getElementById("map-attach-go").addEventListener("click", function () {
      var sel = document.getElementById("map-attach-card");
      if (CalmaMap.selected && sel.value) { Live.send("card.attach", { id: parseInt(sel.value, 10), key: CalmaMap.selected.key }); }
    });
    var holder = document.getElementById("board-map");
    if (holder) {
      holder.addEventListener("toggle", function () { if (holder.open) { CalmaMap.render(); if (window.Plotly && mapEl.data) { window.Plotly.Plots.resize(mapEl); } } });
    }
    CalmaMap.load();  // deferred scripts run in order: plotly.js is already loaded here
    if (!Board) {
      // Segment 2 without the board: map job progress arrives on the board socket too.
      Live.on(function (m) { if (m.kind === "job") { CalmaMap.job(m.payload); } if (m.kind === "resync") { CalmaMap.load(); } });
      Live.connect();
    }
  }
})();
