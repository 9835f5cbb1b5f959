// Draws the outcomes page's charts from the numbers the page carries in
// <script type="application/json" id="outcomes-data"> (no inline script: the CSP
// allows scripts from this origin only).
(function () {
  "use strict";
  var source = document.getElementById("outcomes-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var brand = "#1d4ed8";
  var soft = "#93c5fd";

  function bar(id, labels, datasets, options) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: Object.assign(
        {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: datasets.length > 1 } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
        },
        options || {}
      )
    });
  }

  // Page views outnumber everything else by orders of magnitude: a log scale keeps
  // tips, leads and solved cases visible beside them.
  bar(
    "chart-funnel",
    data.funnel.labels,
    [{ label: "Count", data: data.funnel.values, backgroundColor: brand }],
    { scales: { y: { type: "logarithmic", min: 0.5, ticks: { precision: 0 } } } }
  );
  bar("chart-channels", data.channels.labels, [
    { label: "Tips", data: data.channels.values, backgroundColor: brand }
  ], { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } });
  bar("chart-months", data.months.labels, [
    { label: "Solved", data: data.months.solved, backgroundColor: soft },
    { label: "With tips", data: data.months.with_tips, backgroundColor: brand }
  ]);
})();
