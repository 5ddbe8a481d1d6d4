// Sortable tables: <table data-sortable> with <button class="sort" data-sort="text|number"> in
// its header cells. Numbers sort by the cell's data-value. Re-applied after htmx swaps.
(function () {
  "use strict";
  function sortBy(table, th, type) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var descending = th.getAttribute("aria-sort") !== "descending";
    if (type === "text" && !th.hasAttribute("aria-sort")) { descending = false; }
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });
    rows.sort(function (a, b) {
      var x = a.cells[index], y = b.cells[index], r;
      if (type === "number") { r = parseFloat(x.dataset.value || x.textContent) - parseFloat(y.dataset.value || y.textContent); }
      else { r = collator.compare(x.textContent.trim(), y.textContent.trim()); }
      return descending ? -r : r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("table[data-sortable] button.sort");
    if (!btn) { return; }
    sortBy(btn.closest("table"), btn.closest("th"), btn.dataset.sort);
  });
})();
