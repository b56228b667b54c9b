// The jobs pages: the new-job form's sections by kind and its pair filter, a running job's
// live logs (server-sent events), and the equity and drawdown charts (Chart.js).
// Every page works without this script; log lines and any text a job wrote are only ever
// set as text (textContent, text nodes), never as markup.
"use strict";

(() => {
  // --- the new-job form ---------------------------------------------------------------------
  const form = document.getElementById("job-form");
  if (form) {
    const sections = form.querySelectorAll("[data-kinds]");
    const choices = form.querySelectorAll("input[name=kind]");
    const showKind = () => {
      const chosen = form.querySelector("input[name=kind]:checked");
      const kind = chosen ? chosen.value : "backtest";
      sections.forEach((section) => {
        const applies = section.getAttribute("data-kinds").split(" ").includes(kind);
        section.hidden = !applies;
        section.disabled = !applies;
      });
      choices.forEach((choice) => choice.closest("label").classList.toggle("chosen", choice.checked));
    };
    choices.forEach((choice) => choice.addEventListener("change", showKind));
    showKind();

    const pairs = document.getElementById("pairs");
    const filter = document.getElementById("pair-filter");
    const count = document.getElementById("pair-count");
    if (pairs && filter) {
      filter.addEventListener("input", () => {
        const wanted = filter.value.trim().toUpperCase();
        pairs.querySelectorAll("option").forEach((option) => {
          option.hidden = wanted !== "" && !option.value.includes(wanted) && !option.selected;
        });
      });
    }
    if (pairs && count) {
      const showCount = () => {
        const chosen = Array.from(pairs.selectedOptions).map((option) => option.value);
        count.textContent = chosen.length ? chosen.join(", ") : "";
      };
      pairs.addEventListener("change", showCount);
      showCount();
    }
    const unlimited = document.getElementById("stake_unlimited");
    const stake = document.getElementById("stake_amount");
    if (unlimited && stake) {
      const showStake = () => { stake.disabled = unlimited.checked; };
      unlimited.addEventListener("change", showStake);
      showStake();
    }
  }

  // --- live logs ----------------------------------------------------------------------------
  const log = document.getElementById("job-log");
  const stream = log ? log.getAttribute("data-stream") : null;
  if (log && stream && window.EventSource) {
    const live = document.getElementById("live-state");
    const badge = document.getElementById("job-status");
    const names = JSON.parse(document.getElementById("status-names").textContent);
    const showLive = (state) => {
      if (!live) return;
      live.textContent = live.getAttribute("data-" + state);
      live.className = "live " + state;
    };
    const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    const source = new EventSource(stream);
    let lines = 0;
    source.addEventListener("log", (event) => {
      const follow = atBottom();
      log.appendChild(document.createTextNode(event.data + (event.data.endsWith("\n") ? "" : "\n")));
      lines += 1;
      log.setAttribute("data-streamed", String(lines));
      if (follow) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("status", (event) => {
      const status = event.data;
      if (badge && Object.prototype.hasOwnProperty.call(names, status)) {
        const span = badge.querySelector(".state");
        span.className = "state " + status;
        span.textContent = names[status];
        badge.setAttribute("data-status", status);
      }
      showLive(status === "queued" ? "waiting" : "live");
    });
    source.addEventListener("end", () => {
      source.close();
      // The page as it is now: the job's results, or why it ended.
      window.location.reload();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) showLive("paused");
    });
  }

  // --- charts -------------------------------------------------------------------------------
  const island = document.getElementById("chart-data");
  if (island && window.Chart) {
    const data = JSON.parse(island.textContent);
    const lang = data.texts.lang === "fr" ? "fr-FR" : "en-GB";
    const zone = { timeZone: "Europe/Paris" };
    const times = data.series.flatMap((series) => series.points.map((point) => point[0]));
    const first = Math.min(...times);
    const last = Math.max(...times);
    const span = last - first;
    // Ticks as precise as the period needs: hours over a few days, months over years.
    const day = new Intl.DateTimeFormat(
      lang,
      span < 4 * 86400000 ? { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", ...zone }
        : span < 400 * 86400000 ? { day: "numeric", month: "short", ...zone }
          : { month: "short", year: "numeric", ...zone },
    );
    const moment = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", ...zone });
    const amount = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const colours = ["#1d4ed8", "#d97706"];
    const timeAxis = {
      type: "linear",
      min: first,
      max: last,
      ticks: { maxTicksLimit: 8, callback: (value) => day.format(new Date(value)) },
      grid: { display: false },
    };
    const tooltip = (unit) => ({
      callbacks: {
        title: (items) => (items.length ? moment.format(new Date(items[0].parsed.x)) : ""),
        label: (item) => `${item.dataset.label}: ${amount.format(item.parsed.y)}${unit}`,
      },
    });
    const several = data.series.length > 1;
    const common = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      parsing: false,
      normalized: true,
    };
    const equityCanvas = document.getElementById("equity-chart");
    if (equityCanvas) {
      new window.Chart(equityCanvas, {
        type: "line",
        data: {
          datasets: data.series.map((series, index) => ({
            label: series.label,
            data: series.points.map((point) => ({ x: point[0], y: point[1] })),
            borderColor: colours[index % colours.length],
            backgroundColor: colours[index % colours.length] + "22",
            fill: !several,
            stepped: "after",
            pointRadius: 0,
            borderWidth: 2,
          })),
        },
        options: {
          ...common,
          scales: {
            x: timeAxis,
            y: { ticks: { callback: (value) => amount.format(value) }, title: { display: true, text: `${data.texts.equity} (${data.currency})` } },
          },
          plugins: { legend: { display: several }, tooltip: tooltip(" " + data.currency) },
        },
      });
    }
    const drawdownCanvas = document.getElementById("drawdown-chart");
    if (drawdownCanvas) {
      new window.Chart(drawdownCanvas, {
        type: "line",
        data: {
          datasets: data.series.map((series, index) => ({
            label: several ? series.label : data.texts.drawdown,
            data: series.points.filter((point) => point[2] !== null).map((point) => ({ x: point[0], y: point[2] })),
            borderColor: several ? colours[index % colours.length] : "#b91c1c",
            backgroundColor: "#b91c1c33",
            // Two filled areas would hide each other: compared, the lines alone.
            fill: several ? false : "origin",
            stepped: "after",
            pointRadius: 0,
            borderWidth: 1.5,
          })),
        },
        options: {
          ...common,
          scales: {
            x: timeAxis,
            y: { max: 0, ticks: { callback: (value) => `${amount.format(value)} %` }, title: { display: true, text: `${data.texts.drawdown} (%)` } },
          },
          plugins: { legend: { display: false }, tooltip: tooltip(" %") },
        },
      });
    }
  }
})();
