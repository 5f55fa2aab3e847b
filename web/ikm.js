// The public satisfaction page (/ikm, no key): the mall's published IKM per agency for a month,
// ranked only where the sample is representative (PermenPANRB 14/2017; Krejcie & Morgan), the
// others listed apart; each agency's nine SKM elements; the grade table. Published aggregates
// only (GET /v1/leaderboard with each agency's elements, GET /v1/ratings/summary for the whole
// mall): never a citizen or a ticket.

import { ApiError, all, api, fill, element as h } from "/web/api.js";
import {
  clock,
  count,
  decimal,
  mallDate,
  monthLabel,
  setZone,
  t,
  toggleLanguage,
  translatePage,
} from "/web/i18n.js";

const REFRESH_MS = 60_000;
const MONTHS = 12;
const GRADES = [
  ["A", "88,31 – 100,00"],
  ["B", "76,61 – 88,30"],
  ["C", "65,00 – 76,60"],
  ["D", "25,00 – 64,99"],
];
const notice = document.getElementById("notice");
const period = document.getElementById("period");
let last = null; // the last answers, re-rendered when the language changes

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

// The selectable months: this one (in the mall's zone) and the eleven before it.
function months() {
  const [y, m] = mallDate().split("-").map(Number);
  return Array.from({ length: MONTHS }, (_, i) => {
    const at = new Date(Date.UTC(y, m - 1 - i, 1));
    return `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, "0")}`;
  });
}

function fillPeriods() {
  const chosen = period.value || new URLSearchParams(location.search).get("period");
  const options = months();
  fill(period, options.map((m) => h("option", { value: m }, monthLabel(m))));
  period.value = options.includes(chosen) ? chosen : options[0];
}

function grade(letter) {
  return letter ? h("span", { class: `grade grade-${letter}` }, letter, " · ", t(`grade.${letter}`)) : null;
}

function elements(list, respondents) {
  if (!list || !respondents) return null;
  return h("details", { class: "elements" },
    h("summary", {}, t("ikm.elements")),
    h("table", {},
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("ikm.element")),
        h("th", { scope: "col" }, t("ikm.value")),
        h("th", { scope: "col" }, t("ikm.grade")))),
      h("tbody", {}, list.map((e) =>
        h("tr", { "data-element": e.code },
          h("th", { scope: "row" }, `${e.code} ${t(`ikm.${e.code}`)}`),
          h("td", {}, decimal(e.converted)),
          h("td", {}, e.grade || "—"))))));
}

function entry(item) {
  const rated = item.converted_ikm !== null;
  return h("li", { class: "ikm-entry", "data-agency": item.agency_id },
    h("div", { class: "ikm-head" },
      item.rank
        ? h("span", { class: "rank" },
          h("span", { "aria-hidden": "true" }, item.rank),
          h("span", { class: "sr-only" }, t("ikm.rank", { n: item.rank })))
        : null,
      h("h3", { class: "name" }, item.agency_name),
      h("span", { class: "score" }, rated ? decimal(item.converted_ikm) : t("ikm.unrated"))),
    h("p", { class: "facts-line" },
      grade(item.grade),
      h("span", { class: "respondents" },
        item.representative
          ? t("ikm.respondents", { n: count(item.respondents) })
          : t("ikm.needed", { n: count(item.respondents), m: count(item.sample_needed) }))),
    elements(item.elements, item.respondents));
}

function render() {
  const { board, mall, agencies } = last;
  const ikm = mall.ikm;
  fill(
    document.getElementById("mall-ikm"),
    h("p", { class: "ikm-value", id: "mall-value" },
      ikm.converted ? decimal(ikm.converted) : t("ikm.unrated")),
    grade(ikm.grade),
    h("p", { class: mall.representative ? null : "warn", id: "mall-respondents" },
      mall.representative
        ? t("ikm.respondents", { n: count(mall.count) })
        : t("ikm.needed", { n: count(mall.count), m: count(mall.sample_needed) })),
    elements(mall.ikm.elements, mall.count),
  );
  // names as the catalogue has them (the leaderboard's copy may lag an agency's registration)
  const names = new Map(agencies.map((a) => [a.id, a.name]));
  const items = board.items.map((i) => ({ ...i, agency_name: names.get(i.agency_id) || i.agency_name }));
  const ranked = items.filter((i) => i.rank !== null);
  const listed = new Set(items.map((i) => i.agency_id));
  const unranked = [
    ...items.filter((i) => i.rank === null),
    // agencies nobody rated and nobody was served by in the period: listed, never ranked
    ...agencies.filter((a) => !listed.has(a.id)).map((a) => ({
      agency_id: a.id, agency_name: a.name, rank: null, converted_ikm: null, grade: null,
      respondents: 0, sample_needed: 0, representative: false, elements: [],
    })),
  ];
  fill(
    document.getElementById("ranked"),
    ranked.length ? ranked.map(entry) : h("li", { class: "empty" }, t("ikm.ranked_none")),
  );
  fill(document.getElementById("unranked"), unranked.map(entry));
  fill(
    document.getElementById("legend"),
    GRADES.flatMap(([letter, range]) => [h("dt", {}, grade(letter)), h("dd", {}, range)]),
  );
  document.getElementById("weight").textContent = t("ikm.weight", {
    w: board.weight === "regulation" ? "0,111" : "1/9",
  });
  document.getElementById("updated").textContent = t("ikm.updated", { time: clock(new Date()) });
}

async function refresh() {
  const month = period.value;
  const first = `${month}-01`;
  try {
    const [board, mall, agencies] = await Promise.all([
      api(`/v1/leaderboard?period=${month}`),
      api(`/v1/ratings/summary?period=month&date=${first}`),
      all("/v1/agencies"),
    ]);
    if (month !== period.value) return; // another month was chosen meanwhile
    last = { board, mall, agencies };
    render();
    say("");
  } catch (error) {
    say(error instanceof ApiError ? error.message : t("ticket.offline"));
  }
}

period.addEventListener("change", () => {
  history.replaceState(null, "", `${location.pathname}?period=${period.value}`);
  refresh();
});
document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  translatePage();
  fillPeriods();
  if (last) render();
});

async function start() {
  translatePage();
  try {
    const mall = await api("/v1/mall");
    setZone(mall);
    document.getElementById("mall-name").textContent = mall.name;
  } catch {
    say(t("ticket.offline"));
  }
  fillPeriods();
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
