// Bots pages: the pair picker of the form, the profit chart, the live log and the state
// watch of a bot's page. Every page works without this script.
"use strict";

(() => {
  // --- the form: pairs of the chosen stake currency -------------------------------------
  const currency = document.querySelector("[data-stake-currency]");
  if (currency) {
    const groups = Array.from(document.querySelectorAll(".pair-group"));
    const filter = document.querySelector("[data-pair-filter]");
    const count = document.querySelector("[data-pair-count]");

    const showGroup = () => {
      for (const group of groups) {
        const shown = group.dataset.currency === currency.value;
        group.hidden = !shown;
        // Hidden pairs are not sent: the bot's pairs all share one quote currency.
        for (const box of group.querySelectorAll("input[type=checkbox]")) {
          box.disabled = !shown;
        }
      }
      for (const unit of document.querySelectorAll("[data-currency-unit]")) {
        unit.textContent = currency.value;
      }
      applyFilter();
    };

    const applyFilter = () => {
      const wanted = (filter ? filter.value : "").trim().toUpperCase();
      for (const label of document.querySelectorAll(".pair-group:not([hidden]) label.pair")) {
        const box = label.querySelector("input");
        label.hidden = wanted !== "" && !box.value.includes(wanted) && !box.checked;
      }
      countSelected();
    };

    const countSelected = () => {
      if (!count) return;
      const selected = document.querySelectorAll(
        ".pair-group:not([hidden]) input[type=checkbox]:checked",
      ).length;
      count.textContent = count.dataset.template.replace("%(n)s", String(selected));
    };

    currency.addEventListener("change", showGroup);
    if (filter) filter.addEventListener("input", applyFilter);
    document.addEventListener("change", (event) => {
      if (event.target instanceof HTMLInputElement && event.target.name === "pairs") {
        countSelected();
      }
    });
    showGroup();
  }

  // --- the bot's page: cumulative closed profit -----------------------------------------
  const data = document.getElementById("profit-data");
  const canvas = document.getElementById("profit-chart");
  if (data && canvas && window.Chart) {
    const chart = JSON.parse(data.textContent);
    const locale = chart.locale === "fr" ? "fr-FR" : "en-GB";
    const when = new Intl.DateTimeFormat(locale, {
      timeZone: "Europe/Paris",
      dateStyle: "short",
      timeStyle: "short",
    });
    const amount = new Intl.NumberFormat(locale, { maximumFractionDigits: 8 });
    const points = chart.points.map(([x, y]) => ({ x, y: Number(y) }));
    new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          {
            label: chart.label,
            data: points,
            stepped: "after",
            borderColor: "#1d4ed8",
            backgroundColor: "rgba(29, 78, 216, 0.08)",
            fill: "origin",
            pointRadius: points.length > 60 ? 0 : 3,
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        scales: {
          x: {
            type: "linear",
            ticks: { maxTicksLimit: 6, callback: (value) => when.format(new Date(value)) },
          },
          y: { ticks: { callback: (value) => amount.format(value) } },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => when.format(new Date(items[0].parsed.x)),
              label: (item) => `${amount.format(item.parsed.y)} ${chart.currency}`,
            },
          },
        },
      },
    });
  }

  // --- the bot's page: live log ---------------------------------------------------------
  const log = document.getElementById("log");
  const status = document.querySelector("[data-log-status]");
  const MAX_CHARS = 200000;
  if (log && status && window.EventSource) {
    let after = Number(log.dataset.after);
    let delay = 5000;
    const say = (key) => {
      status.textContent = status.dataset[key];
      status.dataset.state = key;
    };
    const append = (text) => {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      const line = document.createElement("span");
      line.className = "arrived";
      // Text, never markup: the log is the tenant's own program's output.
      line.textContent = text;
      log.append(line);
      while (log.textContent.length > MAX_CHARS && log.firstChild) {
        log.firstChild.remove();
      }
      if (atBottom) log.scrollTop = log.scrollHeight;
      const empty = document.querySelector("[data-log-empty]");
      if (empty) empty.remove();
    };
    const follow = () => {
      const source = new EventSource(`${log.dataset.stream}?after=${after}`);
      source.addEventListener("open", () => say("live"));
      source.addEventListener("log", (event) => {
        append(event.data.endsWith("\n") ? event.data : `${event.data}\n`);
        after = Math.max(after, Number(event.lastEventId));
        delay = 5000;
      });
      // The server ends a stream when the bot is stopped, or after a few minutes: follow
      // again later (sooner while output comes), so a bot started again is followed too.
      source.addEventListener("end", (event) => {
        source.close();
        say(event.data === "the bot is stopped" ? "ended" : "paused");
        window.setTimeout(follow, delay);
        delay = Math.min(delay * 2, 60000);
      });
      source.addEventListener("error", () => {
        if (source.readyState === EventSource.CLOSED) {
          say("refused");
          window.setTimeout(follow, 60000);
        }
      });
    };
    log.scrollTop = log.scrollHeight;
    follow();
  }

  // --- the bot's page: reload when its state changes ------------------------------------
  // Often while the worker brings the bot where the client wants it, now and then after.
  const watched = document.querySelector("[data-state-url]");
  if (watched) {
    const seen = watched.dataset.seen;
    const every = watched.dataset.busy === "1" ? 3000 : 15000;
    const check = () => {
      fetch(watched.dataset.stateUrl, { headers: { Accept: "application/json" } })
        .then((answer) => {
          if (answer.status === 404) return { seen: "gone" }; // deleted meanwhile
          return answer.ok ? answer.json() : null;
        })
        .then((state) => {
          if (state && state.seen !== seen) {
            window.location.reload();
          } else {
            window.setTimeout(check, every);
          }
        })
        .catch(() => window.setTimeout(check, 30000));
    };
    window.setTimeout(check, every);
  }
})();
