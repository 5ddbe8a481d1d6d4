// Reflect: initial coding on a transcript. Every action is one HTTP request through a
// service; the server answers with the re-rendered turn, which replaces the answer's text
// and its list of highlights. Offsets sent to the server are Unicode code points (Python
// string indices); the browser's selection gives UTF-16 code units, converted here.
(function () {
  "use strict";

  var root, coder, codeInput, memoInput, errorBox, statusBox, chipsBox, excerptBox, deleteBtn, titleEl;
  var state = null; // {messageId, start, end, excerpt, annotationId}
  var pendingRange = null;

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }
  function msg(name) {
    var el = coder.querySelector("[data-msg-" + name + "]");
    return el ? el.textContent : "";
  }

  // --- offsets -------------------------------------------------------------------------------
  // UTF-16 offset of (node, offset) inside root's text.
  function utf16Offset(rootEl, node, offset) {
    if (node.nodeType !== Node.TEXT_NODE) {
      // A boundary between children: count the text of the children before it.
      var total = 0;
      for (var i = 0; i < offset && i < node.childNodes.length; i++) { total += node.childNodes[i].textContent.length; }
      node = node.childNodes[offset] || null;
      if (node === null) {
        var walkerAll = document.createTreeWalker(rootEl, NodeFilter.SHOW_TEXT);
        var sum = 0, t;
        while ((t = walkerAll.nextNode())) { sum += t.textContent.length; }
        return offset === 0 ? 0 : sum;
      }
      return utf16Offset(rootEl, firstText(node) || node, 0);
    }
    return window.CalmaText.offsetIn(rootEl, node, offset);
  }
  function firstText(node) {
    if (node.nodeType === Node.TEXT_NODE) { return node; }
    var w = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    return w.nextNode();
  }
  // Code points in the first `units` UTF-16 units of text (a pair counts once).
  function codePoints(text, units) {
    var cp = 0;
    for (var i = 0; i < units && i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.length) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xDC00 && d <= 0xDFFF) { i++; }
      }
      cp++;
    }
    return cp;
  }
  // UTF-16 units for `cps` code points of text (inverse of codePoints).
  function utf16Units(text, cps) {
    var i = 0;
    while (cps > 0 && i < text.length) {
      var c = text.charCodeAt(i);
      i += (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.length) ? 2 : 1;
      cps--;
    }
    return i;
  }
  window.calmaSpans = { codePoints: codePoints, utf16Units: utf16Units };

  function selectionIn(msgEl) {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) { return null; }
    var range = sel.getRangeAt(0).cloneRange();
    if (!range.intersectsNode(msgEl)) { return null; }
    // A selection running past the answer (a triple click, a drag into the next turn) is
    // clamped to the answer's own text.
    var whole = document.createRange();
    whole.selectNodeContents(msgEl);
    if (range.compareBoundaryPoints(Range.START_TO_START, whole) < 0) { range.setStart(whole.startContainer, whole.startOffset); }
    if (range.compareBoundaryPoints(Range.END_TO_END, whole) > 0) { range.setEnd(whole.endContainer, whole.endOffset); }
    var text = msgEl.textContent;
    var a = utf16Offset(msgEl, range.startContainer, range.startOffset);
    var b = utf16Offset(msgEl, range.endContainer, range.endOffset);
    if (a < 0 || b < 0 || b <= a) { return null; }
    // Trim whitespace at the edges, as people rarely mean to code it.
    while (a < b && /\s/.test(text.charAt(a))) { a++; }
    while (b > a && /\s/.test(text.charAt(b - 1))) { b--; }
    if (b <= a) { return null; }
    return { start: codePoints(text, a), end: codePoints(text, b), excerpt: text.slice(a, b), range: range };
  }

  function msgElFor(node) {
    var el = node && (node.nodeType === Node.TEXT_NODE ? node.parentElement : node);
    return el ? el.closest("[data-msg-text]") : null;
  }

  // --- pending highlight (CSS Custom Highlight API where available) ------------------------------
  function showPending(range) {
    pendingRange = range;
    if (window.CSS && CSS.highlights && window.Highlight) {
      if (range) { CSS.highlights.set("calma-pending", new Highlight(range)); }
      else { CSS.highlights.delete("calma-pending"); }
    }
  }

  // --- the coder panel -----------------------------------------------------------------------
  function placeCoder(turnEl) {
    var msgEl = turnEl.querySelector("[data-msg-text]");
    if (msgEl.nextElementSibling !== coder) { msgEl.insertAdjacentElement("afterend", coder); }
    coder.hidden = false;
  }

  function openNew(turnEl, sel) {
    state = { messageId: turnEl.dataset.messageId, start: sel.start, end: sel.end, excerpt: sel.excerpt, annotationId: null };
    placeCoder(turnEl);
    titleEl.textContent = titleEl.dataset.titleNew;
    excerptBox.textContent = sel.excerpt;
    chipsBox.innerHTML = "";
    memoInput.value = "";
    deleteBtn.hidden = true;
    setError("");
    statusBox.textContent = "";
    showPending(sel.range);
  }

  function openEdit(annId) {
    var li = document.getElementById("ann-" + annId);
    if (!li) { return; }
    var turnEl = li.closest("[data-message-id]");
    state = { messageId: turnEl.dataset.messageId, start: +li.dataset.start, end: +li.dataset.end, annotationId: annId,
              excerpt: li.querySelector(".excerpt").textContent };
    placeCoder(turnEl);
    titleEl.textContent = titleEl.dataset.titleEdit;
    excerptBox.textContent = state.excerpt;
    memoInput.value = li.dataset.memo || "";
    deleteBtn.hidden = false;
    setError("");
    statusBox.textContent = "";
    renderChips(li);
    showPending(null);
    codeInput.focus();
  }

  function renderChips(li) {
    chipsBox.innerHTML = "";
    var tpl = coder.querySelector("[data-chip-template]");
    li.querySelectorAll(".chips .chip").forEach(function (chip) {
      var node = tpl.content.firstElementChild.cloneNode(true);
      var text = chip.textContent.trim();
      node.querySelector("span").textContent = text;
      node.dataset.codeId = chip.dataset.codeId;
      var x = node.querySelector("[data-remove-code]");
      x.setAttribute("aria-label", x.getAttribute("aria-label") + ": " + text);
      chipsBox.appendChild(node);
    });
  }

  function closeCoder(refocus) {
    var turnEl = coder.closest("[data-message-id]");
    coder.hidden = true;
    showPending(null);
    state = null;
    if (refocus && turnEl) {
      var m = turnEl.querySelector("[data-msg-text]");
      if (m) { m.focus(); }
    }
  }

  function setError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  // --- requests ----------------------------------------------------------------------------------
  function post(url, data) {
    var body = new FormData();
    Object.keys(data).forEach(function (k) {
      var v = data[k];
      if (Array.isArray(v)) { v.forEach(function (x) { body.append(k, x); }); } else { body.append(k, v); }
    });
    coder.setAttribute("aria-busy", "true");
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Coding": "1" }
    }).then(function (resp) {
      coder.removeAttribute("aria-busy");
      return resp.text().then(function (text) {
        if (!resp.ok) {
          var message = resp.headers.get("content-type") && resp.headers.get("content-type").indexOf("text/plain") === 0
            ? text : msg("failed");
          throw new Error(message);
        }
        return { text: text, annotationId: resp.headers.get("X-Annotation-Id") };
      });
    }, function () {
      coder.removeAttribute("aria-busy");
      throw new Error(msg("failed"));
    });
  }

  function applyTurn(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    var fresh = tpl.content.querySelector("[data-message-id]");
    if (!fresh) { return null; }
    var current = document.getElementById(fresh.id);
    if (!current) { return null; }
    // Replace the parts, leaving the coder panel (inside the article) where it is.
    ["[data-msg-text]", "[data-ann-list]", "h2.who"].forEach(function (sel) {
      var a = current.querySelector(sel), b = fresh.querySelector(sel);
      if (a && b) { a.replaceWith(b); }
    });
    var msgEl = current.querySelector("[data-msg-text]");
    if (msgEl && msgEl.nextElementSibling !== coder && !coder.hidden && coder.closest("[data-message-id]") === current) {
      msgEl.insertAdjacentElement("afterend", coder);
    }
    return current;
  }

  function annBase() { return root.dataset.annBase; }

  function rememberSuggestion(text) {
    var list = document.getElementById("code-suggestions");
    if (!list) { return; }
    var key = window.CalmaText.normalize(text);
    var exists = Array.prototype.some.call(list.options, function (o) { return window.CalmaText.normalize(o.value) === key; });
    if (!exists) { var o = document.createElement("option"); o.value = text.trim(); list.appendChild(o); }
  }

  function saveCode() {
    if (!state) { setError(msg("select")); return Promise.resolve(false); }
    var text = codeInput.value;
    if (!text.trim()) { closeCoder(true); return Promise.resolve(true); }
    var req;
    if (state.annotationId) {
      req = post(annBase() + state.annotationId + "/codes/", { code: text });
    } else {
      req = post(root.dataset.createUrl, { message: state.messageId, start: state.start, end: state.end,
                                          code: [text], memo: memoInput.value });
    }
    return req.then(function (res) {
      applyTurn(res.text);
      rememberSuggestion(text);
      state.annotationId = res.annotationId || state.annotationId;
      codeInput.value = "";
      setError("");
      statusBox.textContent = msg("saved");
      var li = document.getElementById("ann-" + state.annotationId);
      if (li) { renderChips(li); }
      deleteBtn.hidden = false;
      titleEl.textContent = titleEl.dataset.titleEdit;
      showPending(null);
      codeInput.focus();
      return true;
    }).catch(function (err) { setError(err.message); codeInput.focus(); return false; });
  }

  function saveMemo() {
    if (!state || !state.annotationId) { return; } // a new highlight sends its memo with the first code
    var li = document.getElementById("ann-" + state.annotationId);
    if (li && (li.dataset.memo || "") === memoInput.value.trim()) { return; }
    post(annBase() + state.annotationId + "/memo/", { memo: memoInput.value }).then(function (res) {
      applyTurn(res.text);
      statusBox.textContent = msg("saved");
      setError("");
    }).catch(function (err) { setError(err.message); });
  }

  function removeCode(codeId) {
    if (!state || !state.annotationId) { return; }
    post(annBase() + state.annotationId + "/codes/" + codeId + "/remove/", {}).then(function (res) {
      applyTurn(res.text);
      var li = document.getElementById("ann-" + state.annotationId);
      if (li) { renderChips(li); }
      statusBox.textContent = msg("saved");
      setError("");
      codeInput.focus();
    }).catch(function (err) { setError(err.message); });
  }

  function deleteAnnotation() {
    if (!state || !state.annotationId) { return; }
    if (!window.confirm(deleteBtn.dataset.confirmText)) { return; }
    post(annBase() + state.annotationId + "/delete/", {}).then(function (res) {
      applyTurn(res.text);
      closeCoder(true);
    }).catch(function (err) { setError(err.message); });
  }

  // --- keyboard on an answer -------------------------------------------------------------------
  function codableMessages() { return Array.prototype.slice.call(root.querySelectorAll("[data-codable] [data-msg-text]")); }

  function moveTurn(current, step) {
    var list = codableMessages();
    var i = list.indexOf(current);
    var next = list[i + step];
    if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); }
  }

  function ensureCaret(msgEl) {
    var sel = window.getSelection();
    if (sel.rangeCount && msgEl.contains(sel.anchorNode)) { return sel; }
    var t = firstText(msgEl);
    if (t) { sel.collapse(t, 0); }
    return sel;
  }

  function onMessageKey(ev, msgEl) {
    var key = ev.key;
    if ((key === "ArrowRight" || key === "ArrowLeft" || key === "ArrowUp" || key === "ArrowDown" || key === "Home" || key === "End") && !ev.metaKey) {
      if (key === "ArrowDown" && !ev.shiftKey && ev.altKey) { ev.preventDefault(); moveTurn(msgEl, 1); return; }
      if (key === "ArrowUp" && !ev.shiftKey && ev.altKey) { ev.preventDefault(); moveTurn(msgEl, -1); return; }
      var sel = ensureCaret(msgEl);
      if (!sel.modify) { return; }
      var dir = { ArrowRight: "right", ArrowLeft: "left", ArrowUp: "backward", ArrowDown: "forward", Home: "backward", End: "forward" }[key];
      var unit = (key === "Home" || key === "End") ? "lineboundary" : (key === "ArrowUp" || key === "ArrowDown") ? "line" : (ev.ctrlKey || ev.altKey) ? "word" : "character";
      sel.modify(ev.shiftKey ? "extend" : "move", dir, unit);
      if (!msgEl.contains(sel.focusNode)) { // do not run past the answer
        sel.modify(ev.shiftKey ? "extend" : "move", dir === "right" ? "left" : dir === "left" ? "right" : dir === "forward" ? "backward" : "forward", unit);
      }
      ev.preventDefault();
      return;
    }
    if (key === "Enter" || key === "c" || key === "C") {
      var s = selectionIn(msgEl);
      if (s) { ev.preventDefault(); openNew(msgEl.closest("[data-message-id]"), s); codeInput.focus(); }
      return;
    }
    if (key === "Escape" && !coder.hidden) { ev.preventDefault(); closeCoder(false); return; }
    if (key === "j" || key === "J") { ev.preventDefault(); moveTurn(msgEl, 1); return; }
    if (key === "k" || key === "K") { ev.preventDefault(); moveTurn(msgEl, -1); return; }
  }

  function innermost(ids) {
    // Of overlapping highlights under the pointer, edit the shortest.
    var best = null, bestLen = Infinity;
    ids.forEach(function (id) {
      var li = document.getElementById("ann-" + id);
      if (!li) { return; }
      var len = +li.dataset.end - +li.dataset.start;
      if (len < bestLen) { best = id; bestLen = len; }
    });
    return best;
  }

  function init() {
    root = document.querySelector("[data-transcript]");
    if (!root) { return; }
    coder = document.getElementById("coder");
    var editable = root.hasAttribute("data-editable") && coder;

    // Read-only or editable: clicking a highlight takes you to its entry in the list.
    root.addEventListener("click", function (ev) {
      var mark = ev.target.closest("mark[data-ann]");
      var editBtn = ev.target.closest("[data-edit-ann]");
      if (editBtn && editable) { openEdit(editBtn.dataset.editAnn); return; }
      if (!mark) { return; }
      var sel = window.getSelection();
      if (sel && !sel.isCollapsed) { return; }
      var id = innermost(mark.dataset.ann.split(" "));
      if (!id) { return; }
      if (editable) { openEdit(id); } else {
        var li = document.getElementById("ann-" + id);
        if (li) { li.classList.add("flash"); li.scrollIntoView({ block: "nearest" }); setTimeout(function () { li.classList.remove("flash"); }, 1200); }
      }
    });
    if (!editable) { return; }

    codeInput = document.getElementById("coder-code");
    memoInput = document.getElementById("coder-memo");
    errorBox = coder.querySelector("[data-coder-error]");
    statusBox = coder.querySelector("[data-coder-status]");
    chipsBox = coder.querySelector("[data-coder-chips]");
    excerptBox = coder.querySelector("[data-coder-excerpt]");
    deleteBtn = coder.querySelector("[data-coder-delete]");
    titleEl = coder.querySelector("[data-coder-title]");
    setError("");

    // A finished mouse or touch selection opens the panel under the answer (focus stays put).
    function maybeOpenFromSelection() {
      var sel = window.getSelection();
      if (!sel || sel.rangeCount === 0 || sel.isCollapsed) { return; }
      var msgEl = msgElFor(sel.anchorNode) || msgElFor(sel.focusNode);
      if (!msgEl || !root.contains(msgEl)) { return; }
      var s = selectionIn(msgEl);
      if (s) { openNew(msgEl.closest("[data-message-id]"), s); }
    }
    root.addEventListener("mouseup", function () { setTimeout(maybeOpenFromSelection, 0); });
    // Phones adjust a selection with handles after the first touch: follow it.
    var pending = null;
    document.addEventListener("selectionchange", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        var sel = window.getSelection();
        if (!sel || sel.isCollapsed || !msgElFor(sel.anchorNode)) { return; }
        maybeOpenFromSelection();
      }, 300);
    });
    root.addEventListener("touchend", function () { setTimeout(maybeOpenFromSelection, 350); });
    root.addEventListener("keyup", function (ev) {
      if (ev.shiftKey && ev.target.matches && ev.target.matches("[data-msg-text]")) {
        var s = selectionIn(ev.target);
        if (s) { openNew(ev.target.closest("[data-message-id]"), s); }
      }
    });
    root.addEventListener("keydown", function (ev) {
      if (ev.target.matches && ev.target.matches("[data-msg-text]")) { onMessageKey(ev, ev.target); }
    });

    codeInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.isComposing) { ev.preventDefault(); saveCode(); }
      else if (ev.key === "Escape") { ev.preventDefault(); closeCoder(true); }
    });
    memoInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); saveMemo(); closeCoder(true); }
    });
    memoInput.addEventListener("change", saveMemo);
    coder.querySelector("[data-coder-save]").addEventListener("click", function () { saveCode(); });
    // Done: a code still in the field is saved first (nothing typed is silently dropped).
    coder.querySelector("[data-coder-close]").addEventListener("click", function () {
      if (codeInput.value.trim()) {
        saveCode().then(function (ok) { if (ok) { closeCoder(true); } });
      } else {
        saveMemo();
        closeCoder(true);
      }
    });
    deleteBtn.addEventListener("click", deleteAnnotation);
    chipsBox.addEventListener("click", function (ev) {
      var x = ev.target.closest("[data-remove-code]");
      if (x) { removeCode(x.closest(".chip").dataset.codeId); }
    });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
