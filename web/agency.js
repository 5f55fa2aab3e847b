// An agency's dashboard (/agency?agency=<id>, the agency admin's key kept on the device): the
// day's KPIs overall and per service, this month's IKM with its grade and whether the sample is
// representative, complaints with their deadlines, the day's settlement and its CSV.

import { ApiError, all, api, deviceKey, fill, element as h, pair } from "/web/api.js";
import { clock, rupiah, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";

const REFRESH_MS = 10_000;
const params = new URLSearchParams(location.search);
const agency = params.get("agency") || localStorage.getItem("mpp.agency.id");
if (params.get("agency")) localStorage.setItem("mpp.agency.id", params.get("agency"));
let key = deviceKey("agency");
let services = new Map();
const notice = document.getElementById("notice");

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

function minutes(seconds) {
  return seconds == null ? "—" : t("agency.minutes", { n: Math.round(seconds / 60) });
}

function renderStats(stats) {
  const o = stats.overall;
  const kpi = (label, value, id) => [h("dt", {}, t(label)), h("dd", { id }, value)];
  fill(
    document.getElementById("kpis"),
    kpi("agency.tickets", o.tickets, "kpi-tickets"),
    kpi("agency.served", o.served, "kpi-served"),
    kpi("agency.wait", minutes(o.waiting.median_seconds), "kpi-wait"),
    kpi("agency.serve", minutes(o.serving.median_seconds), "kpi-serve"),
    kpi("agency.breaches", o.sla_breaches, "kpi-breaches"),
    kpi("agency.no_shows", o.no_shows, "kpi-no-shows"),
  );
  fill(
    document.getElementById("by-service"),
    stats.by_service.map((s) =>
      h("tr", {},
        h("td", {}, services.get(s.service_id)?.name || s.service_id),
        h("td", {}, s.tickets),
        h("td", {}, s.served),
        h("td", {}, minutes(s.waiting.median_seconds)),
        h("td", {}, s.sla_breaches))),
  );
}

function renderIkm(summary) {
  const ikm = summary.ikm;
  fill(
    document.getElementById("ikm"),
    h("p", { class: "ikm-value", id: "ikm-value" }, ikm.converted ?? "—", ikm.grade ? ` (${ikm.grade} · ${ikm.grade_label})` : ""),
    h("p", { id: "ikm-count" }, t("agency.respondents", { n: summary.count })),
    summary.representative ? null : h("p", { class: "warn" }, t("agency.not_representative")),
  );
}

function renderComplaints(items) {
  const list = document.getElementById("complaints");
  if (items.length === 0) {
    fill(list, h("li", {}, t("agency.no_complaints")));
    return;
  }
  fill(
    list,
    items.map((c) =>
      h("li", { "data-complaint": c.id },
        h("span", { class: "stars", "aria-label": `${c.stars}/5` }, "★".repeat(c.stars)),
        h("span", { class: "comment" }, c.comment || "—"),
        h("span", { class: "state" }, c.status),
        c.status === "open" ? h("span", { class: "due" }, t("agency.due", { time: clock(c.first_response_due) })) : null)),
  );
}

function renderSettlement(report) {
  const row = (label, value, id) => [h("dt", {}, t(label)), h("dd", { id }, value)];
  fill(
    document.getElementById("settlement"),
    h("dl", { class: "kpis" },
      row("agency.tickets", report.count, "settle-count"),
      row("agency.gross", rupiah(report.gross_idr), "settle-gross"),
      row("agency.refunds", rupiah(report.refunds_idr), "settle-refunds"),
      row("agency.net", rupiah(report.net_idr), "settle-net")),
  );
}

async function refresh() {
  const month = `?agency=${encodeURIComponent(agency)}&period=month`;
  try {
    const [stats, summary, complaints, settlement] = await Promise.all([
      api(`/v1/stats/queue?agency=${encodeURIComponent(agency)}`, { key }),
      api(`/v1/ratings/summary${month}`),
      api(`/v1/agencies/${encodeURIComponent(agency)}/complaints?limit=50`, { key }),
      api(`/v1/agencies/${encodeURIComponent(agency)}/settlements`, { key }),
    ]);
    renderStats(stats);
    renderIkm(summary);
    renderComplaints(complaints.items);
    renderSettlement(settlement);
    say("");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      localStorage.removeItem("mpp.agency.key");
      location.reload();
      return;
    }
    say(error instanceof ApiError ? error.message : t("ticket.offline"));
  }
}

// the CSV through the API with the key (a plain link could not send it), saved as a file
async function downloadCsv() {
  const response = await fetch(`/v1/agencies/${encodeURIComponent(agency)}/settlements`, {
    headers: { Authorization: `Bearer ${key}`, Accept: "text/csv" },
  });
  if (!response.ok) {
    say(t("error.generic"));
    return;
  }
  const link = h("a", {
    href: URL.createObjectURL(await response.blob()),
    download: `settlement-${agency}.csv`,
  });
  document.body.append(link);
  link.click();
  link.remove();
}

document.getElementById("csv").addEventListener("click", downloadCsv);
document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  translatePage();
  refresh();
});

async function start() {
  translatePage();
  if (!agency) {
    say(t("agency.no_key"));
    return;
  }
  if (!key) {
    key = await pair("agency", document.getElementById("setup"), t);
  }
  try {
    setZone(await api("/v1/mall"));
    services = new Map((await all(`/v1/services?agency=${encodeURIComponent(agency)}`)).map((s) => [s.id, s]));
  } catch {
    say(t("ticket.offline"));
  }
  const tick = () => (document.getElementById("clock").textContent = clock(new Date()));
  tick();
  setInterval(tick, 1000);
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
