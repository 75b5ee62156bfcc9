// The distress chart on a client's record page. The data comes from the page's
// <script type="application/json" id="distress-data"> block (no inline script: the
// Content-Security-Policy forbids it); Chart.js (vendor/chart-4.6.1.umd.min.js) draws it.
// The same ratings are in a table on the page for anyone who cannot see the chart.
(() => {
  "use strict";
  const source = document.getElementById("distress-data");
  const canvas = document.getElementById("distress-chart");
  if (!source || !canvas || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  if (!data.points || data.points.length === 0) return;

  // Colour and point shape both tell the series apart (not colour alone).
  const SERIES = {
    before: { label: "Distress before an exercise (0 calm, 10 worst)", color: "#b3261e", point: "circle", dash: [] },
    after: { label: "Distress after an exercise (0 calm, 10 worst)", color: "#1a5fb4", point: "triangle", dash: [] },
    checkin: { label: "Mood check-in (0 very low, 10 very good)", color: "#2e7d32", point: "rectRot", dash: [6, 4] },
  };
  // The x axis is time (milliseconds); a few hours of margin, and hours on the ticks for a short span.
  const HOUR = 3600 * 1000;
  const xs = data.points.map((p) => p.x);
  const first = Math.min(...xs);
  const last = Math.max(...xs);
  const margin = Math.max((last - first) * 0.03, 6 * HOUR);
  const short = last - first < 3 * 24 * HOUR;
  const tickFormat = short ? { month: "short", day: "numeric", hour: "numeric" } : { month: "short", day: "numeric" };
  const formatter = (options) => {
    try {
      return new Intl.DateTimeFormat("en-US", { timeZone: data.zone, ...options });
    } catch (error) {
      return new Intl.DateTimeFormat("en-US", { timeZone: "UTC", ...options });
    }
  };
  const tick = formatter(tickFormat);
  const full = formatter({ dateStyle: "medium", timeStyle: "short" });

  const datasets = Object.entries(SERIES).map(([key, style]) => ({
    label: style.label,
    data: data.points.filter((p) => p.series === key),
    borderColor: style.color,
    backgroundColor: style.color,
    pointStyle: style.point,
    pointRadius: 4,
    borderDash: style.dash,
    tension: 0,
  })).filter((set) => set.data.length > 0);

  new window.Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: { xAxisKey: "x", yAxisKey: "y" },
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: {
          type: "linear",
          min: first - margin,
          max: last + margin,
          ticks: { callback: (value) => tick.format(new Date(value)), maxTicksLimit: 6 },
        },
        y: { min: 0, max: 10, ticks: { stepSize: 2 }, title: { display: true, text: "Rating (0-10)" } },
      },
      plugins: {
        legend: { labels: { usePointStyle: true } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? items[0].raw.label || full.format(new Date(items[0].raw.x)) : ""),
            label: (item) => `${item.dataset.label.split(" (")[0]}: ${item.raw.y}${item.raw.skill ? ` (${item.raw.skill})` : ""}`,
          },
        },
      },
    },
  });
})();
