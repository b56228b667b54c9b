// Billing pages: on to PayPal, the identity form's company fields, the usage chart.
"use strict";

(() => {
  // The subscription's approval: go on to PayPal at once (the link stays for no-script).
  const follow = document.querySelector("a[data-follow]");
  if (follow) {
    window.location.assign(follow.href);
  }

  // The company's fields only for a company.
  const business = document.querySelector("[data-business-only]");
  if (business) {
    const form = business.closest("form");
    const sync = () => {
      const chosen = form.querySelector("input[name=customer_type]:checked");
      business.hidden = !chosen || chosen.value !== "business";
    };
    form.addEventListener("change", sync);
    sync();
  }

  // Usage per day: the data comes from the page's JSON island.
  const canvas = document.getElementById("usage-chart");
  const source = document.getElementById("usage-chart-data");
  if (!canvas || !source || typeof window.Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const lang = document.documentElement.lang || "fr";
  const colors = ["#1d4ed8", "#047857", "#b45309", "#7c3aed"];
  const day = (iso) =>
    new Date(`${iso}T00:00:00Z`).toLocaleDateString(lang, {
      day: "numeric",
      month: "short",
      timeZone: "UTC",
    });
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels.map(day),
      datasets: data.datasets.map((set, index) => ({
        type: set.axis === "minutes" ? "line" : "bar",
        label: set.label,
        data: set.data,
        hidden: Boolean(set.hidden),
        yAxisID: set.axis,
        backgroundColor: colors[index % colors.length],
        borderColor: colors[index % colors.length],
        borderWidth: set.axis === "minutes" ? 2 : 0,
        pointRadius: 0,
        tension: 0.2,
      })),
    },
    options: {
      locale: lang,
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        hours: {
          type: "linear",
          position: "left",
          beginAtZero: true,
          title: { display: true, text: data.axes.hours },
        },
        minutes: {
          type: "linear",
          position: "right",
          beginAtZero: true,
          grid: { drawOnChartArea: false },
          title: { display: true, text: data.axes.minutes },
        },
      },
    },
  });
})();
