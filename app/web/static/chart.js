// Time-series charts with uPlot, drawn from the JSON the page carries beside each chart.
// The same figures are in a table on the page, so nothing is lost without JavaScript.
"use strict";

(function () {
  var COLOURS = ["#1d4ed8", "#0f766e", "#b45309", "#b91c1c", "#6d28d9"];

  function draw(box) {
    var source = document.getElementById(box.dataset.chart);
    if (!source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    if (!data.x.length) { return; }
    var unit = data.unit;
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (one, index) {
      series.push({
        label: one.label,
        stroke: COLOURS[index % COLOURS.length],
        width: 2,
        spanGaps: true,
        value: function (u, v) { return v == null ? "—" : v.toFixed(v < 10 ? 2 : 1) + " " + unit; },
      });
      columns.push(one.values);
    });
    var width = Math.max(box.clientWidth, 320);
    var options = {
      width: width,
      height: 260,
      series: series,
      scales: { x: { time: true } },
      axes: [
        { stroke: "#4f5863", grid: { stroke: "#e5e8ec" } },
        {
          stroke: "#4f5863",
          grid: { stroke: "#e5e8ec" },
          size: 76,
          values: function (u, splits) { return splits.map(function (v) { return v + " " + unit; }); },
        },
      ],
      legend: { live: true },
    };
    box.textContent = "";
    var plot = new uPlot(options, columns, box);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(box.clientWidth, 320), height: 260 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    event.target.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
