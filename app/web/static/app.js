// Small enhancements over pages that read fine without them.
"use strict";

// Uptime bars: each day's figure as a tooltip, read from the strip's data attributes
// (one attribute per strip keeps the page light at hundreds of components).
function labelBars(root) {
  root.querySelectorAll(".bars[data-start]:not([data-labelled])").forEach(function (strip) {
    var start = new Date(strip.dataset.start + "T00:00:00Z");
    var values = strip.dataset.u.split(",");
    strip.querySelectorAll("i").forEach(function (bar, index) {
      var day = new Date(start.getTime() + index * 86400000).toISOString().slice(0, 10);
      var value = values[index];
      bar.title = day + ": " + (value === "" ? "no data" : value + "% up");
    });
    strip.dataset.labelled = "1";
  });
}

document.addEventListener("DOMContentLoaded", function () { labelBars(document); });
document.addEventListener("htmx:afterSwap", function (event) { labelBars(event.target); });
