// A mall day hour by hour, drawn as SVG: tickets taken and served per hour (bars, left axis) and
// the median wait of those who arrived in the hour (line, right axis, minutes). No chart library:
// 24 hours and three series are a few dozen shapes, and SVG needs no inline script or style
// (the CSP) and prints. The same figures are in a table for screen readers and for copying.

import { element as h } from "/web/api.js";

const NS = "http://www.w3.org/2000/svg";
const W = 960;
const H = 280;
const PAD = { left: 44, right: 52, top: 16, bottom: 36 };

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The top of an axis of four equal whole steps (1, 2 or 5 × 10^k each) that holds ``value``.
function niceMax(value) {
  const rough = Math.max(1, value / 4);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  return step * 4;
}

// The hours worth showing: opening hours at least (07-17), widened to any hour with a ticket.
export function shownHours(hours) {
  const busy = hours.filter((x) => x.taken || x.served).map((x) => x.hour);
  const first = Math.min(7, ...busy);
  const last = Math.max(17, ...busy);
  return hours.filter((x) => x.hour >= first && x.hour <= last);
}

export function waitMinutes(hour) {
  const s = hour.waiting.median_seconds;
  return s == null ? null : Math.round(s / 60);
}

/** The chart, its legend and its table. ``words``: {title, taken, served, wait, waitLegend, hour,
 * table, minutes(n)}. */
export function hourlyChart(hours, words) {
  const shown = shownHours(hours);
  const countMax = niceMax(Math.max(1, ...shown.map((x) => Math.max(x.taken, x.served))));
  const waitMax = niceMax(Math.max(1, ...shown.map((x) => waitMinutes(x) ?? 0)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / shown.length;
  const bar = Math.max(2, slot * 0.34);
  const y = (v) => PAD.top + plotH - (v / countMax) * plotH;
  const yWait = (v) => PAD.top + plotH - (v / waitMax) * plotH;

  const grid = [];
  for (let i = 0; i <= 4; i += 1) {
    const v = (countMax / 4) * i;
    const w = (waitMax / 4) * i;
    grid.push(
      svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      svg("text", { class: "axis", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, Math.round(v)),
      svg("text", { class: "axis wait", x: W - PAD.right + 6, y: y(v) + 4 }, Math.round(w)),
    );
  }
  const bars = shown.flatMap((x, i) => {
    const left = PAD.left + i * slot + (slot - 2 * bar) / 2;
    return [
      svg("rect", { class: "taken", x: left, y: y(x.taken), width: bar, height: PAD.top + plotH - y(x.taken) },
        svg("title", {}, `${String(x.hour).padStart(2, "0")}:00 · ${words.taken}: ${x.taken}`)),
      svg("rect", { class: "served", x: left + bar, y: y(x.served), width: bar, height: PAD.top + plotH - y(x.served) },
        svg("title", {}, `${String(x.hour).padStart(2, "0")}:00 · ${words.served}: ${x.served}`)),
      svg("text", { class: "axis", x: PAD.left + i * slot + slot / 2, y: H - PAD.bottom + 16, "text-anchor": "middle" },
        String(x.hour).padStart(2, "0")),
    ];
  });
  const points = shown
    .map((x, i) => [PAD.left + i * slot + slot / 2, waitMinutes(x)])
    .filter(([, m]) => m != null);
  const line = points.length
    ? [
        svg("polyline", { class: "wait-line", points: points.map(([px, m]) => `${px},${yWait(m)}`).join(" ") }),
        ...points.map(([px, m]) => svg("circle", { class: "wait-dot", cx: px, cy: yWait(m), r: 4 },
          svg("title", {}, `${words.wait}: ${words.minutes(m)}`))),
      ]
    : [];
  const chart = svg("svg", {
    class: "hourly-chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-labelledby": "hourly-svg-title",
    id: "hourly-svg",
  },
  svg("title", { id: "hourly-svg-title" }, words.title),
  ...grid,
  svg("text", { class: "axis", x: PAD.left + plotW / 2, y: H - 4, "text-anchor": "middle" }, words.hour),
  ...bars,
  ...line);

  const legend = h("p", { class: "legend" },
    h("span", { class: "swatch taken" }), " ", words.taken, "  ",
    h("span", { class: "swatch served" }), " ", words.served, "  ",
    h("span", { class: "swatch wait" }), " ", words.waitLegend);
  const table = h("details", { class: "hourly-table" },
    h("summary", {}, words.table),
    h("table", { id: "hourly-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, words.hour),
        h("th", { scope: "col" }, words.taken),
        h("th", { scope: "col" }, words.served),
        h("th", { scope: "col" }, words.wait))),
      h("tbody", {}, shown.map((x) => h("tr", { "data-hour": x.hour },
        h("th", { scope: "row" }, `${String(x.hour).padStart(2, "0")}:00`),
        h("td", {}, x.taken),
        h("td", {}, x.served),
        h("td", {}, waitMinutes(x) == null ? "—" : words.minutes(waitMinutes(x)))))),
    ));
  return [chart, legend, table];
}
