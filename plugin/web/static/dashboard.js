/* Draws the dashboard's charts (Chart.js, shipped in vendor/) from the figures the page embeds;
   each chart's table beneath holds the same numbers, so the page reads without JavaScript too. */
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  var colours = ["#d35400", "#2874a6", "#1e8449", "#7d3c98", "#b7950b", "#a04000", "#566573", "#17a589", "#cb4335", "#5d6d7e"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var chart = charts[canvas.getAttribute("data-chart")];
    if (!chart) { return; }
    var hasRightAxis = chart.series.some(function (s) { return s.axis === "y1"; });
    var scales = { x: { stacked: !!chart.stacked }, y: { beginAtZero: true, stacked: !!chart.stacked } };
    if (hasRightAxis) { scales.y1 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } }; }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: chart.series.map(function (s, i) {
          return { label: s.label, data: s.data, type: s.type || "bar", yAxisID: s.axis || "y",
                   backgroundColor: colours[i % colours.length], borderColor: colours[i % colours.length] };
        })
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales,
                 interaction: { mode: "index", intersect: false } }
    });
    canvas.setAttribute("data-drawn", "1");
  });
})();
