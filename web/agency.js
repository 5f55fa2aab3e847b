// An agency's dashboard (/agency?agency=<id>, the agency admin's key kept on the device): the
// day's KPIs overall and per service, this month's IKM with its grade and whether the sample is
// representative, complaints with their deadlines, the day's settlement and its CSV.

import { ApiError, all, api, deviceKey, fill, element as h, pair, randomKey } from "/web/api.js";
import { clock, dateTime, language, mallDate, rupiah, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";
import { hourlyChart } from "/web/hourly.js";
import { redraw, startManaging } from "/web/agency-manage.js";

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

// Complaints: each with its status, deadline (date and time in the mall's zone), the answers
// given, and a form to answer while it is open or answered. A refresh re-renders the list only
// when it changed, and keeps what an admin is typing (drafts by complaint).
const drafts = new Map();
let complaintsShown = "";

function saveDrafts() {
  for (const form of document.querySelectorAll("#complaints form[data-complaint]")) {
    drafts.set(form.dataset.complaint, {
      open: form.closest("details").open,
      message: form.elements.message.value,
      resolve: form.elements.resolve.checked,
      dispute: form.elements.dispute?.checked || false,
      key: drafts.get(form.dataset.complaint)?.key || randomKey(),
    });
  }
}

function deadline(c) {
  const late = (iso) => Date.parse(iso) < Date.now();
  const due = (which, iso) =>
    h("span", { class: late(iso) ? "due overdue" : "due" },
      t(`complaint.due.${which}`, { when: dateTime(iso) }),
      late(iso) ? ` (${t("complaint.overdue")})` : "");
  if (c.status === "open") return due("first_response", c.first_response_due);
  if (c.status === "responded") return due("resolution", c.resolution_due);
  if (c.status === "resolved") return h("span", { class: "done" }, t("complaint.resolved_at", { when: dateTime(c.resolved_at) }));
  return h("span", { class: "due overdue" },
    t("complaint.escalated_at", { when: dateTime(c.escalated_at) }),
    c.escalated_for ? ` (${t(`complaint.escalated_for.${c.escalated_for}`)})` : "");
}

function replyForm(c) {
  const draft = drafts.get(c.id) || { open: false, message: "", resolve: false, dispute: false, key: randomKey() };
  drafts.set(c.id, draft);
  const id = (name) => `${name}-${c.id}`;
  const form = h("form", { class: "reply", "data-complaint": c.id },
    h("label", { for: id("message") }, t("complaint.message")),
    h("textarea", { id: id("message"), name: "message", rows: "3", maxlength: "2000", required: true }),
    h("label", { class: "check" },
      h("input", { type: "checkbox", name: "resolve", checked: draft.resolve }), " ", t("complaint.resolve")),
    c.disputed
      ? null
      : h("label", { class: "check" },
          h("input", { type: "checkbox", name: "dispute", checked: draft.dispute }), " ", t("complaint.dispute")),
    h("button", { type: "submit", class: "primary" }, t("complaint.send")),
  );
  form.elements.message.value = draft.message;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    respond(c.id, form);
  });
  return h("details", { class: "reply-box", open: draft.open }, h("summary", {}, t("complaint.reply")), form);
}

async function respond(complaintId, form) {
  const button = form.querySelector("button[type=submit]");
  if (button.disabled) return;
  button.disabled = true;
  saveDrafts();
  const draft = drafts.get(complaintId);
  try {
    await api(`/v1/complaints/${encodeURIComponent(complaintId)}/responses`, {
      method: "POST",
      key,
      // one key per answer written: a retry after a lost reply never answers twice
      idempotencyKey: draft.key,
      body: { message: form.elements.message.value.trim(), resolve: draft.resolve, dispute: draft.dispute },
    });
    form.reset(); // sent: the next refresh shows the answer, not the draft
    form.closest("details").open = false;
    drafts.delete(complaintId);
    say(t("complaint.sent"));
    complaintsShown = "";
    await refresh({ keepNotice: true });
  } catch (error) {
    // answered (even refused): the next try is a new answer with a new key
    if (error instanceof ApiError) draft.key = randomKey();
    say(error instanceof ApiError ? error.message : t("ticket.offline"));
    button.disabled = false;
  }
}

function renderComplaints(items) {
  const signature = JSON.stringify(items);
  if (signature === complaintsShown) return;
  saveDrafts();
  complaintsShown = signature;
  const list = document.getElementById("complaints");
  if (items.length === 0) {
    fill(list, h("li", {}, t("agency.no_complaints")));
    return;
  }
  fill(
    list,
    items.map((c) =>
      h("li", { "data-complaint": c.id, "data-status": c.status },
        h("div", { class: "complaint-head" },
          h("span", { class: "stars", role: "img", "aria-label": `${c.stars}/5` }, "★".repeat(c.stars)),
          h("span", { class: "service" }, services.get(c.service_id)?.name || ""),
          h("span", { class: "reason" }, t(`complaint.reason.${c.reason}`)),
          h("span", { class: `state ${c.status}` }, t(`complaint.status.${c.status}`)),
          c.disputed ? h("span", { class: "state" }, t("complaint.disputed")) : null,
        ),
        h("p", { class: "comment" }, c.comment || "—"),
        h("p", { class: "deadline" }, deadline(c)),
        c.responses.length
          ? h("ol", { class: "responses", "aria-label": t("complaint.responses") },
              c.responses.map((r) =>
                h("li", {},
                  h("span", { class: "when" }, dateTime(r.created_at)),
                  " ",
                  h("span", { class: "message" }, r.message),
                  r.resolves ? h("span", { class: "resolves" }, ` · ${t("complaint.resolves")}`) : null)))
          : null,
        c.status === "open" || c.status === "responded" ? replyForm(c) : null)),
  );
}

// The day × hour chart: today's follows the refresh; another day, chosen in the date field, is
// read once (a past day no longer changes).
let chartDay = null; // null: today
let chartShown = "";

function renderHourly(stats) {
  const signature = `${language()}|${stats.date}|${JSON.stringify(stats.by_hour)}`;
  if (signature === chartShown) return; // keeps the table's open state across refreshes
  chartShown = signature;
  const open = document.querySelector("#hourly details")?.open || false;
  fill(
    document.getElementById("hourly"),
    hourlyChart(stats.by_hour, {
      title: t("hourly.chart", { day: dayName(stats.date) }),
      taken: t("hourly.taken"),
      served: t("hourly.served"),
      wait: t("hourly.wait"),
      waitLegend: t("hourly.wait_legend"),
      hour: t("hourly.hour"),
      table: t("hourly.table"),
      minutes: (n) => t("agency.minutes", { n }),
    }),
  );
  if (open) document.querySelector("#hourly details").open = true;
}

function dayName(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(language() === "id" ? "id-ID" : "en-GB", {
    timeZone: "UTC", weekday: "long", day: "numeric", month: "long", year: "numeric",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}

async function showDay(day) {
  chartDay = day && day !== mallDate() ? day : null;
  try {
    const date = chartDay ? `&date=${chartDay}` : "";
    renderHourly(await api(`/v1/stats/queue?agency=${encodeURIComponent(agency)}${date}`, { key }));
  } catch (error) {
    say(error instanceof ApiError ? error.message : t("ticket.offline"));
  }
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

async function refresh({ keepNotice = false } = {}) {
  const month = `?agency=${encodeURIComponent(agency)}&period=month`;
  try {
    const [stats, summary, complaints, settlement] = await Promise.all([
      api(`/v1/stats/queue?agency=${encodeURIComponent(agency)}`, { key }),
      api(`/v1/ratings/summary${month}`),
      api(`/v1/agencies/${encodeURIComponent(agency)}/complaints?limit=50`, { key }),
      api(`/v1/agencies/${encodeURIComponent(agency)}/settlements`, { key }),
    ]);
    renderStats(stats);
    if (!chartDay) renderHourly(stats);
    renderIkm(summary);
    renderComplaints(complaints.items);
    renderSettlement(settlement);
    if (!keepNotice && notice.textContent !== t("complaint.sent")) say("");
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
  saveDrafts();
  complaintsShown = "";
  chartShown = "";
  refresh();
  if (chartDay) showDay(chartDay);
  redraw();
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
  const day = document.getElementById("hourly-date");
  day.max = mallDate();
  day.value = mallDate();
  day.addEventListener("change", () => day.value && showDay(day.value));
  const tick = () => (document.getElementById("clock").textContent = clock(new Date()));
  tick();
  setInterval(tick, 1000);
  await refresh();
  setInterval(refresh, REFRESH_MS);
  await startManaging({
    agency,
    key,
    say,
    onServices: (list) => {
      for (const service of list) services.set(service.id, service);
    },
  });
}

start();
