// Reflect: focused coding board. Forms work without script (post + redirect); with script
// they post in the background and the board is replaced by the server's fresh rendering.
// Names and definitions save when a field is left. Codes can be dragged onto attributes.
(function () {
  "use strict";

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }
  function board() { return document.getElementById("board"); }
  function text(name) { var el = board() && board().querySelector("[data-msg-" + name + "]"); return el ? el.textContent : ""; }
  function showError(message) {
    var box = board() && board().querySelector("[data-board-error]");
    if (box) { box.textContent = message; }
  }

  function send(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Coding": "1" }
    }).then(function (resp) {
      return resp.text().then(function (t) {
        if (!resp.ok) {
          var ct = resp.headers.get("content-type") || "";
          throw new Error(ct.indexOf("text/plain") === 0 ? t : text("failed"));
        }
        return t;
      });
    }, function () { throw new Error(text("failed")); });
  }

  function replaceBoard(html) {
    var activeId = document.activeElement && document.activeElement.id;
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    var fresh = tpl.content.querySelector("#board");
    if (!fresh || !board()) { return; }
    board().replaceWith(fresh);
    if (window.htmx) { window.htmx.process(fresh); }
    var again = activeId && document.getElementById(activeId);
    if (again) { again.focus(); }
  }

  function submitForm(form) {
    var status = form.querySelector("[data-save-status]");
    return send(form.action, new FormData(form)).then(function (html) {
      showError("");
      if (form.hasAttribute("data-autosave")) {
        if (status) { status.textContent = text("saved"); }
        form.querySelectorAll("input, textarea").forEach(function (f) { f.defaultValue = f.value; });
      } else {
        replaceBoard(html);
      }
    }).catch(function (err) {
      showError(err.message);
      if (status) { status.textContent = ""; }
    });
  }

  function postCode(url, codeId) {
    var body = new FormData();
    body.append("code", codeId);
    return send(url, body).then(replaceBoard).catch(function (err) { showError(err.message); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!board()) { return; }
    document.documentElement.setAttribute("data-js", "");

    document.addEventListener("submit", function (ev) {
      var form = ev.target.closest("#board form[data-coding-form]");
      if (!form) { return; }
      var cancelled = ev.defaultPrevented; // app.js asks data-confirm questions first
      ev.preventDefault();
      if (!cancelled) { submitForm(form); }
    });
    // The new-attribute form lives in the board too but must not autosave; autosave forms save on change.
    document.addEventListener("change", function (ev) {
      var form = ev.target.closest("#board form[data-autosave]");
      if (form) { submitForm(form); }
    });

    // Renaming a code: the form posts through htmx (hx-post on the form), the fresh board
    // replaces the old one. A refusal (empty, too long, a name already in the codebook) comes
    // back as a 400 plain-text message: htmx does not swap it, so it is shown under the field,
    // which keeps what was typed.
    function renameForm(ev) {
      var elt = ev.detail && ev.detail.elt;
      return elt && elt.closest ? elt.closest("form[data-rename-form]") : null;
    }
    function renameError(form, message) {
      var box = form.querySelector("[data-rename-error]");
      if (box) { box.textContent = message; }
      var field = form.querySelector("input[name=text]");
      if (field) {
        if (message) { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
        if (message) { field.focus(); }
      }
    }
    var renamed = null;
    document.body.addEventListener("htmx:beforeRequest", function (ev) {
      var form = renameForm(ev);
      if (!form) { return; }
      renameError(form, "");
      showError("");
      var status = document.querySelector("[data-focus-status]");
      if (status) { status.textContent = ""; }
      renamed = form.closest("[data-code-id]").dataset.codeId;
    });
    document.body.addEventListener("htmx:responseError", function (ev) {
      var form = renameForm(ev);
      if (!form) { return; }
      var xhr = ev.detail.xhr;
      var ct = xhr.getResponseHeader("content-type") || "";
      renamed = null;
      renameError(form, ct.indexOf("text/plain") === 0 ? xhr.responseText : text("failed"));
    });
    document.body.addEventListener("htmx:sendError", function (ev) {
      var form = renameForm(ev);
      if (form) { renamed = null; renameError(form, text("failed")); }
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      if (!renamed) { return; }
      var summary = document.querySelector('#code-row-' + renamed + ' details.rename summary');
      renamed = null;
      var status = document.querySelector("[data-focus-status]");
      if (status) { status.textContent = text("renamed"); }
      if (summary) { summary.focus(); }
    });

    // Drag and drop: a code onto an attribute adds it; an attribute's code onto the pool takes it out.
    var dragged = null;
    document.addEventListener("dragstart", function (ev) {
      var chip = ev.target.closest && ev.target.closest("#board .chip[draggable]");
      if (!chip) { return; }
      dragged = { codeId: chip.dataset.codeId, from: chip.dataset.fromAttribute || null };
      ev.dataTransfer.effectAllowed = "copyMove";
      ev.dataTransfer.setData("text/plain", chip.textContent.trim());
    });
    document.addEventListener("dragend", function () {
      dragged = null;
      document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
    });
    function target(ev) { return ev.target.closest && ev.target.closest("#board [data-attribute-id], #board [data-drop-pool]"); }
    document.addEventListener("dragover", function (ev) {
      var t = dragged && target(ev);
      if (!t) { return; }
      ev.preventDefault();
      document.querySelectorAll(".drop-target").forEach(function (el) { if (el !== t) { el.classList.remove("drop-target"); } });
      t.classList.add("drop-target");
    });
    document.addEventListener("drop", function (ev) {
      var t = dragged && target(ev);
      if (!t) { return; }
      ev.preventDefault();
      var d = dragged;
      t.classList.remove("drop-target");
      if (t.hasAttribute("data-attribute-id")) {
        if (d.from === t.dataset.attributeId) { return; }
        postCode(t.dataset.addUrl, d.codeId);
      } else if (d.from) {
        var attr = document.getElementById("attribute-" + d.from);
        var form = attr && attr.querySelector('.chip[data-code-id="' + d.codeId + '"] form');
        if (form) { submitForm(form); }
      }
    });
  });
})();
