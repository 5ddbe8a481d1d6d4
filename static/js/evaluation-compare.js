// Model comparison: mean judge score per axis and model, with 95% intervals, from the JSON block.
(function () {
  "use strict";
  var esc = window.CalmaText.escape;
  window.CalmaChart("compare-data", "compare-chart", function (d, el) {
    if (!d.axes.length || !d.models.length) { return; }
    var axes = d.axes.map(function (a, i) { return esc(a) + (d.unreliable[i] ? " ⚠" : ""); });
    var traces = d.models.map(function (m, k) {
      var y = d.means.map(function (row) { return row[k]; });
      return { type: "bar", name: esc(m), x: axes, y: y,
               error_y: { type: "data", symmetric: false, visible: true,
                          array: d.high.map(function (row, i) { return row[k] === null || y[i] === null ? null : row[k] - y[i]; }),
                          arrayminus: d.low.map(function (row, i) { return row[k] === null || y[i] === null ? null : y[i] - row[k]; }) } };
    });
    Plotly.newPlot(el, traces, { barmode: "group", yaxis: { range: [0, 5.2], title: { text: esc(d.labels.mean) } },
      margin: { l: 60, r: 10, t: 10, b: 80 }, height: 360, legend: { orientation: "h" } },
      { responsive: true, displaylogo: false });
  });
})();
