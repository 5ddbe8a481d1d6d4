// Evaluate results: the score distribution per axis, from the <script type="application/json"> block.
(function () {
  "use strict";
  var esc = window.CalmaText.escape;
  window.CalmaChart("eval-data", "eval-chart", function (d, el) {
    if (!d.axes.length) { return; }
    var names = d.axes.map(function (a) { return esc(a.name); });
    var colors = ["#b3261e", "#e8710a", "#9aa0a6", "#34a853", "#1b6e2e"];
    var traces = [0, 1, 2, 3, 4].map(function (i) {
      return { type: "bar", orientation: "h", name: String(i + 1), y: names,
               x: d.axes.map(function (a) { return a.counts[i]; }), marker: { color: colors[i] } };
    });
    Plotly.newPlot(el, traces, { barmode: "stack", margin: { l: 160, r: 10, t: 10, b: 40 },
      height: 120 + 40 * names.length, legend: { orientation: "h", traceorder: "normal" }, yaxis: { automargin: true } },
      { responsive: true, displaylogo: false });
    var jel = document.getElementById("judge-chart");
    if (jel && d.judges && d.judges.length) {
      var axes = d.judges.map(function (a) { return esc(a.axis); });
      var series = [{ type: "bar", name: esc(d.labels.participants), x: axes,
                      y: d.judges.map(function (a) { return a.participants; }) }];
      (d.judges[0].judges || []).forEach(function (j, k) {
        series.push({ type: "bar", name: esc(j.name), x: axes,
                      y: d.judges.map(function (a) { return a.judges[k] ? a.judges[k].alpha : null; }) });
      });
      Plotly.newPlot(jel, series, { barmode: "group", yaxis: { range: [-1, 1], title: { text: esc(d.labels.alpha) } },
        margin: { l: 60, r: 10, t: 10, b: 60 }, height: 340, legend: { orientation: "h" },
        shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0.667, y1: 0.667, line: { dash: "dot", color: "#b3261e" } }] },
        { responsive: true, displaylogo: false });
    }
  });
})();
