// Practice coding: selecting words in the sample fills the excerpt and span fields.
(function () {
  "use strict";
  var offsetIn = window.CalmaText.offsetIn;
  document.addEventListener("selectionchange", function () {
    var root = document.querySelector("[data-practice-text]");
    var sel = window.getSelection();
    if (!root || !sel || sel.rangeCount === 0 || sel.isCollapsed) { return; }
    var range = sel.getRangeAt(0);
    if (!root.contains(range.startContainer) || !root.contains(range.endContainer)) { return; }
    var start = offsetIn(root, range.startContainer, range.startOffset);
    var end = offsetIn(root, range.endContainer, range.endOffset);
    if (start < 0 || end <= start) { return; }
    var text = root.textContent;
    var excerpt = document.getElementById("id_excerpt");
    var s = document.getElementById("id_start"), e = document.getElementById("id_end");
    if (excerpt) { excerpt.value = text.slice(start, end); }
    if (s && e) { s.value = start; e.value = end; }
  });
  document.addEventListener("input", function (ev) {
    if (ev.target && ev.target.id === "id_excerpt") {
      var s = document.getElementById("id_start"), e = document.getElementById("id_end");
      if (s && e) { s.value = ""; e.value = ""; }
    }
  });
})();
