// The officer's console for one counter (/counter?counter=<id>, the officer's key kept on the
// device): what the counter holds with its timers against the SLA, the line in call order, and
// every press with its own Idempotency-Key (a retried press never calls twice).

import { ApiError, all, api, deviceKey, fill, element as h, pair, randomKey } from "/web/api.js";
import { clock, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";

const POLL_MS = 3000;

let key = deviceKey("counter");
const params = new URLSearchParams(location.search);
const counterId = params.get("counter") || localStorage.getItem("mpp.counter.id");
if (params.get("counter")) localStorage.setItem("mpp.counter.id", params.get("counter"));

const notice = document.getElementById("notice");
const buttons = {
  next: document.getElementById("next"),
  recall: document.getElementById("recall"),
  start: document.getElementById("start"),
  complete: document.getElementById("complete"),
  noShow: document.getElementById("no-show"),
  openClose: document.getElementById("open-close"),
};
let state = null;
let busy = false;

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

function minutesSince(iso) {
  return Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 60000));
}

function held() {
  return state?.current[0] || null;
}

function render() {
  if (!state) return;
  document.getElementById("counter-name").textContent = state.counter.name;
  const ticket = held();
  const current = document.getElementById("current");
  if (!ticket) {
    fill(current, h("p", { class: "empty" }, t("counter.none")));
  } else {
    const timer =
      ticket.status === "serving"
        ? t("counter.serving_for", { m: minutesSince(ticket.started_at) })
        : t("counter.called_for", { n: ticket.call_count, m: minutesSince(ticket.last_called_at) });
    fill(current,
      h("p", { class: "number", id: "current-number" }, ticket.number),
      h("p", { class: "status", id: "current-status" }, t(`ticket.status.${ticket.status}`)),
      h("p", {}, timer),
      ticket.sla?.deadline
        ? h("p", { class: ticket.sla.breached ? "late" : "" },
            ticket.sla.breached ? t("counter.late") : t("counter.sla", { time: clock(ticket.sla.deadline) }))
        : null,
      state.current.length > 1 ? h("p", { class: "late" }, t("counter.busy")) : null,
    );
  }
  const called = ticket?.status === "called";
  buttons.next.disabled = busy || Boolean(ticket) || !state.counter.is_open;
  buttons.recall.disabled = busy || !called;
  buttons.start.disabled = busy || !called;
  buttons.complete.disabled = busy || ticket?.status !== "serving";
  // the queue's own minimum (NO_SHOW_AFTER_CALLS): the console never offers what it refuses
  const minimum = state.no_show_after_calls;
  buttons.noShow.disabled = busy || !called || ticket.call_count < minimum;
  buttons.noShow.title = t("counter.min_recalls", { n: minimum });
  const open = state.counter.is_open;
  document.getElementById("counter-state").textContent = t(open ? "counter.is_open" : "counter.is_closed");
  buttons.openClose.textContent = t(open ? "counter.close" : "counter.open");
  buttons.openClose.disabled = busy;
  document.getElementById("transfer").hidden = !ticket;
  document.getElementById("line-title").textContent = t("counter.waiting", { n: state.waiting_count });
  const line = document.getElementById("line");
  if (state.waiting.length === 0) {
    fill(line, h("li", { class: "empty" }, t("counter.empty")));
  } else {
    fill(line,
      ...state.waiting.map((w) =>
        h("li", { "data-number": w.number },
          h("span", { class: "number" }, w.number),
          h("span", {}, w.service_name || w.service_code || ""),
          w.priority ? h("span", { class: "chip" }, t(`priority.${w.priority}`)) : null,
          h("span", { class: "waited" }, t("counter.waited", { m: w.waited_minutes })),
          h("button", {
            type: "button",
            class: "call-out-of-order",
            disabled: busy || Boolean(ticket) || !state.counter.is_open,
            onclick: () => press(`/v1/tickets/${w.id}/call`, { counter_id: counterId }),
          }, t("counter.call")),
        ),
      ),
    );
  }
  if (!state.counter.is_open && !notice.textContent) say(t("counter.closed"));
  if (state.counter.is_open && notice.textContent === t("counter.closed")) say("");
}

// An error the officer can act on, in their words; anything else as the API said it.
function problem(error) {
  const reason = error.details?.reason;
  if (error.code === "INVALID_TRANSITION" && reason === "too_few_calls") {
    return t("counter.too_few_calls", { n: state?.no_show_after_calls ?? "" });
  }
  const known = t(`counter.error.${error.code}`);
  return known === `counter.error.${error.code}` ? error.message : known;
}

async function refresh() {
  try {
    state = await api(`/v1/counters/${encodeURIComponent(counterId)}/line`, { key });
    render();
    if (state.counter.is_open && notice.textContent === t("ticket.offline")) say("");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      localStorage.removeItem("mpp.counter.key"); // revoked: pair again
      location.reload();
      return;
    }
    say(error instanceof ApiError && error.status < 500 ? error.message : t("ticket.offline"));
  }
}

// one press, one key: a retry of the same press (a lost answer) is answered, never repeated
async function press(path, body = {}) {
  if (busy) return;
  busy = true;
  render();
  say("");
  const idempotencyKey = randomKey();
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      await api(path, { method: "POST", body, key, idempotencyKey });
      break;
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        say(problem(error));
        break;
      }
      if (attempt === 2) say(t("ticket.offline"));
    }
  }
  busy = false;
  await refresh();
}

function act(action) {
  const ticket = held();
  if (ticket) press(`/v1/tickets/${ticket.id}/${action}`);
}

buttons.next.addEventListener("click", () => press(`/v1/counters/${counterId}/call-next`));
buttons.recall.addEventListener("click", () => act("recall"));
buttons.start.addEventListener("click", () => act("start"));
buttons.complete.addEventListener("click", () => act("complete"));
buttons.noShow.addEventListener("click", () => act("no-show"));
buttons.openClose.addEventListener("click", () =>
  press(`/v1/counters/${counterId}/${state?.counter.is_open ? "close" : "open"}`),
);
document.getElementById("transfer").addEventListener("submit", (event) => {
  event.preventDefault();
  const to = document.getElementById("transfer-to").value;
  const ticket = held();
  if (ticket && to) press(`/v1/tickets/${ticket.id}/transfer`, { to_service_id: to });
});

const SHORTCUTS = { n: buttons.next, r: buttons.recall, s: buttons.start, c: buttons.complete, x: buttons.noShow };
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
  const button = SHORTCUTS[event.key.toLowerCase()];
  if (button && !button.disabled) {
    event.preventDefault();
    button.click();
  }
});

document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  translatePage();
  render();
});

async function start() {
  translatePage();
  const tick = () => (document.getElementById("clock").textContent = clock(new Date()));
  tick();
  setInterval(tick, 1000);
  if (!counterId) {
    say(t("counter.no_key"));
    return;
  }
  if (!key) {
    key = await pair("counter", document.getElementById("setup"), t);
  }
  try {
    setZone(await api("/v1/mall"));
    const services = await all("/v1/services");
    fill(document.getElementById("transfer-to"),
      ...services.map((s) => h("option", { value: s.id }, s.name)),
    );
  } catch {
    say(t("ticket.offline"));
  }
  await refresh();
  setInterval(() => {
    if (!busy) refresh();
  }, POLL_MS);
}

start();
