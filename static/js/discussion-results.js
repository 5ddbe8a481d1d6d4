// Discuss results and report: plotly charts from <script type="application/json"> data blocks.
(function () {
  "use strict";
  function data(id) { var n = document.getElementById(id); return n ? JSON.parse(n.textContent) : null; }
  var esc = window.CalmaText.escape;
  function draw() {
    if (!window.Plotly) { return; }
    var d = data("results-data");
    var cfg = { responsive: true, displaylogo: false, staticPlot: false };
    var colors = ["#b3261e", "#e8710a", "#9aa0a6", "#34a853", "#1b6e2e"];
    if (d && document.getElementById("likert-chart") && d.likert.length) {
      var names = d.likert.map(function (a) { return esc(a.name); });
      var traces = [0, 1, 2, 3, 4].map(function (i) {
        return { type: "bar", orientation: "h", name: d.labels.likert[i], y: names,
                 x: d.likert.map(function (a) { return a.counts[i]; }), marker: { color: colors[i] } };
      });
      Plotly.newPlot("likert-chart", traces, { barmode: "stack", margin: { l: 160, r: 10, t: 10, b: 40 },
        height: 120 + 40 * names.length, legend: { orientation: "h", traceorder: "normal" }, yaxis: { automargin: true } }, cfg);
    }
    if (d && document.getElementById("shift-chart") && d.shift.length) {
      var rows = d.shift.filter(function (r) { return r.before_rho !== null || r.after_rho !== null; });
      var who = rows.map(function (r) { return r.participant; });
      Plotly.newPlot("shift-chart", [
        { type: "bar", name: d.labels.before, x: who, y: rows.map(function (r) { return r.before_rho; }), marker: { color: "#9aa0a6" } },
        { type: "bar", name: d.labels.after, x: who, y: rows.map(function (r) { return r.after_rho; }), marker: { color: "#0b57d0" } }
      ], { barmode: "group", yaxis: { range: [-1, 1], title: { text: d.labels.rho } }, margin: { l: 60, r: 10, t: 10, b: 40 },
           height: 340, legend: { orientation: "h" } }, cfg);
    }
    var pts = data("map-points");
    if (pts && pts.length && document.getElementById("report-map")) {
      Plotly.newPlot("report-map", ["code", "attribute"].map(function (kind) {
        var sub = pts.filter(function (p) { return p.kind === kind; });
        return { type: "scatter", mode: sub.length > 200 ? "markers" : "markers+text", name: (d && d.labels[kind]) || kind, textposition: "top center",
                 x: sub.map(function (p) { return p.x; }), y: sub.map(function (p) { return p.y; }),
                 text: sub.map(function (p) { return esc(p.label); }),
                 hovertext: sub.map(function (p) { return esc(p.label) + " — " + p.users.join(", "); }), hoverinfo: "text",
                 marker: { symbol: kind === "code" ? "circle" : "diamond", size: 9 } };
      }), { margin: { l: 10, r: 10, t: 10, b: 10 }, height: 560, hovermode: "closest",
            xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" }, legend: { orientation: "h" } }, cfg);
    }
  }
  window.addEventListener("load", draw);
  document.addEventListener("click", function (ev) { if (ev.target.id === "print-report") { window.print(); } });
})();
