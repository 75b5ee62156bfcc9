// Outcome report charts (Chart.js, vendored). The numbers come from the page's
// <script type="application/json" id="report-data"> block; each chart's table on the page shows the same.
(() => {
  "use strict";

  const COLORS = {
    blue: "#1a5fb4",
    green: "#26734d",
    red: "#b3261e",
    orange: "#a35200",
    grey: "#5e6772",
  };

  function dataset(label, data, color, extra) {
    return Object.assign({ label, data, backgroundColor: color, borderColor: color }, extra || {});
  }

  function countAxis() {
    return { beginAtZero: true, ticks: { precision: 0 } };
  }

  function configs(d) {
    const weeks = d.weeks;
    return {
      status: {
        type: "bar",
        data: { labels: d.status.labels.map((s) => s.replace("_", " ")), datasets: [dataset("Clients", d.status.values, COLORS.blue)] },
        options: { scales: { y: countAxis() }, plugins: { legend: { display: false } } },
      },
      texts: {
        type: "line",
        data: { labels: weeks, datasets: [dataset("Texts received", d.texts, COLORS.blue, { tension: 0 })] },
        options: { scales: { y: countAxis() } },
      },
      exercises: {
        type: "bar",
        data: {
          labels: weeks,
          datasets: [dataset("Started", d.started, COLORS.grey), dataset("Finished", d.finished, COLORS.green)],
        },
        options: { scales: { y: countAxis() } },
      },
      skills: {
        type: "bar",
        data: { labels: d.skills.labels, datasets: [dataset("Average change (after − before)", d.skills.values, COLORS.orange)] },
        options: {
          indexAxis: "y",
          scales: { x: { title: { display: true, text: "points on 0–10" } } },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { afterLabel: (item) => `n = ${d.skills.n[item.dataIndex]}` } },
          },
        },
      },
      nudges: {
        type: "bar",
        data: {
          labels: weeks,
          datasets: [dataset("Sent", d.sent, COLORS.grey), dataset("Replied", d.replied, COLORS.blue)],
        },
        options: { scales: { y: countAxis() } },
      },
      opt_outs: {
        type: "bar",
        data: { labels: weeks, datasets: [dataset("Opt-outs", d.opt_outs, COLORS.grey)] },
        options: { scales: { y: countAxis() }, plugins: { legend: { display: false } } },
      },
      events: {
        type: "bar",
        data: {
          labels: weeks,
          datasets: [dataset("Crisis", d.crisis, COLORS.red), dataset("Check", d.check, COLORS.orange)],
        },
        options: { scales: { y: countAxis() } },
      },
      ack: {
        type: "line",
        data: { labels: weeks, datasets: [dataset("Median minutes to acknowledge", d.ack, COLORS.red, { spanGaps: true })] },
        options: { scales: { y: { beginAtZero: true, title: { display: true, text: "minutes" } } } },
      },
    };
  }

  function draw() {
    const source = document.getElementById("report-data");
    if (!source || typeof window.Chart === "undefined") return;
    const all = configs(JSON.parse(source.textContent));
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const config = all[canvas.dataset.chart];
      if (!config) return;
      config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options);
      new window.Chart(canvas, config);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
