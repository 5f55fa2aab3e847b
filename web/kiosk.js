// The kiosk: agency → service → (priority) → a ticket, printed on an 80 mm slip with the QR of
// the citizen's own ticket page. A retried tap sends the same Idempotency-Key: one ticket.

import { ApiError, all, api, element as h, randomKey } from "/web/api.js";
import { clock, isOpen, rupiah, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";
import { qrImage } from "/web/qr.js";
import { PRIORITIES } from "/web/priorities.js";

const screen = document.getElementById("screen");
const notice = document.getElementById("notice");
const IDLE_MS = 45_000;
let agencies = [];
let services = [];
let idleTimer = null;
let show = () => {};

function fee(service) {
  return service.fee_idr === 0 ? t("kiosk.free") : rupiah(service.fee_idr);
}

function say(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

function resetSoon() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => start(), IDLE_MS);
}

async function load() {
  const [mall, agencyList, serviceList] = await Promise.all([
    api("/v1/mall"),
    all("/v1/agencies"),
    all("/v1/services"),
  ]);
  setZone(mall);
  agencies = agencyList;
  services = serviceList.filter((s) => s.active);
}

function checkInEntry() {
  return h("button", { type: "button", class: "check-in-entry", id: "check-in", onclick: () => checkInScreen() },
    t("checkin.entry"));
}

function agencyScreen() {
  const open = agencies.filter((a) => services.some((s) => s.agency_id === a.id && isOpen(s)));
  if (open.length === 0) {
    // a booked citizen may still check in (a slot promised stays promised)
    return [h("p", { class: "closed-screen" }, t("kiosk.all_closed")), checkInEntry()];
  }
  return [
    checkInEntry(),
    h("h2", {}, t("kiosk.pick_agency")),
    h(
      "div",
      { class: "grid" },
      open.map((agency) =>
        h(
          "button",
          { type: "button", class: "tile", "data-agency": agency.code, onclick: () => serviceScreen(agency) },
          h("strong", {}, agency.name),
        ),
      ),
    ),
  ];
}

function serviceScreen(agency) {
  resetSoon();
  const list = services.filter((s) => s.agency_id === agency.id);
  show(() => [
    h("h2", {}, agency.name, " · ", t("kiosk.pick_service")),
    h(
      "div",
      { class: "grid" },
      list.map((service) => {
        const open = isOpen(service);
        return h(
          "button",
          {
            type: "button",
            class: `tile${open ? "" : " off"}`,
            "data-service": service.code,
            disabled: !open,
            onclick: () => confirmScreen(agency, service),
          },
          h("strong", {}, service.name),
          h("span", { class: "fee" }, fee(service)),
          h("span", { class: open ? "state open" : "state" }, open ? t("kiosk.open") : t("kiosk.closed")),
        );
      }),
    ),
    h("button", { type: "button", class: "back", onclick: () => start() }, t("kiosk.back")),
  ]);
}

function confirmScreen(agency, service) {
  resetSoon();
  // one key per intended ticket: a double tap or a retry after a dropped answer reuses it
  const request = { key: randomKey(), priority: null, busy: false };
  const take = async (button) => {
    if (request.busy) return;
    request.busy = true;
    button.disabled = true;
    say("");
    try {
      const ticket = await api("/v1/tickets", {
        method: "POST",
        body: { service_id: service.id, priority: request.priority },
        idempotencyKey: request.key,
      });
      slipScreen(agency, service, ticket);
    } catch (error) {
      say(error instanceof ApiError ? error.message : t("error.generic"));
      button.disabled = false;
    } finally {
      request.busy = false;
    }
  };
  show(() => [
    h("h2", {}, service.name),
    h("p", { class: "agency" }, agency.name, " · ", fee(service)),
    service.requirements.length
      ? h("section", { class: "requirements" },
          h("h3", {}, t("kiosk.requirements")),
          h("ul", {}, service.requirements.map((r) => h("li", {}, r))))
      : null,
    h("fieldset", { class: "priority" },
      h("legend", {}, t("kiosk.priority")),
      PRIORITIES.map((name) =>
        h("button", {
          type: "button",
          class: "chip",
          "aria-pressed": String(request.priority === name),
          "data-priority": name,
          onclick: (event) => {
            request.priority = request.priority === name ? null : name;
            for (const chip of screen.querySelectorAll("[data-priority]")) {
              chip.setAttribute("aria-pressed", String(chip.dataset.priority === request.priority));
            }
            event.currentTarget.blur();
          },
        }, t(`priority.${name}`)),
      ),
    ),
    h("button", { type: "button", class: "primary", id: "take", onclick: (e) => take(e.currentTarget) }, t("kiosk.take")),
    h("button", { type: "button", class: "back", onclick: () => serviceScreen(agency) }, t("kiosk.back")),
  ]);
}

function ticketLink(ticket) {
  return `${location.origin}/t/${ticket.id}?code=${encodeURIComponent(ticket.access_code)}`;
}

function slipScreen(agency, service, ticket, note = null) {
  resetSoon();
  const link = ticketLink(ticket);
  show(() => [
    h("section", { class: "slip", id: "slip" },
      h("p", { class: "mall" }, "Mal Pelayanan Publik"),
      h("p", {}, t("kiosk.your_number")),
      h("p", { class: "number", id: "number" }, ticket.number),
      h("p", { class: "service" }, service.name),
      h("p", { class: "agency" }, agency.name),
      note ? h("p", { class: "checkin-note", id: "checkin-note" }, note()) : null,
      ticket.ahead != null ? h("p", {}, t("kiosk.ahead", { n: ticket.ahead })) : null,
      h("p", { class: "issued" }, clock(ticket.issued_at)),
      qrImage(link, t("kiosk.scan")),
      h("p", { class: "hint" }, t("kiosk.scan")),
      h("a", { class: "link", id: "ticket-link", href: link }, link),
    ),
    h("div", { class: "actions no-print" },
      h("button", { type: "button", class: "primary", onclick: () => window.print() }, t("kiosk.print")),
      h("button", { type: "button", class: "back", onclick: () => start() }, t("kiosk.done")),
    ),
  ]);
}

// -- booking check-in: the booking's code typed (or typed by a USB scanner), or its QR read by
// the camera where the browser has BarcodeDetector; the booking page's QR is a link
// /book?booking=<reference>, so either form is accepted.

const REFERENCE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
let stopCamera = () => {};

export function bookingReference(text) {
  const raw = (text || "").trim();
  let reference = raw;
  try {
    const url = new URL(raw);
    reference = url.searchParams.get("booking") || "";
  } catch {
    // not a link: the code itself
  }
  return REFERENCE.test(reference) ? reference.toLowerCase() : null;
}

async function cameraScanAvailable() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    return (await window.BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch {
    return false;
  }
}

async function scanWithCamera(video, onCode) {
  stopCamera();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    say(t("checkin.no_camera"));
    return;
  }
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  let running = true;
  let timer = null;
  stopCamera = () => {
    running = false;
    clearTimeout(timer);
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
    video.hidden = true;
    stopCamera = () => {};
  };
  video.hidden = false;
  video.srcObject = stream;
  await video.play().catch(() => {});
  const look = async () => {
    if (!running) return;
    try {
      const codes = await detector.detect(video);
      if (codes.length && running) {
        const value = codes[0].rawValue;
        stopCamera();
        onCode(value);
        return;
      }
    } catch {
      // a frame not ready yet: look again
    }
    timer = setTimeout(look, 250);
  };
  look();
}

function checkInProblem(error) {
  if (!(error instanceof ApiError)) return t("ticket.offline");
  if (error.status === 404) return t("checkin.unknown");
  if (error.code === "TOO_EARLY") {
    return t("checkin.too_early", { time: clock(error.details.check_in_opens_at) });
  }
  if (error.code === "INVALID_BOOKING_STATE") {
    const known = t(`checkin.state.${error.details.status}`);
    return known.startsWith("checkin.") ? t("checkin.not_booked") : known;
  }
  return error.status < 500 ? error.message : t("ticket.offline");
}

// One check-in, one Idempotency-Key (per code, for this screen): an answer lost on the way is
// asked again and replayed by the gateway, never refused as "already checked in".
async function checkInOnce(reference, idempotencyKey) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api(`/v1/bookings/${reference}/check-in`, { method: "POST", idempotencyKey });
    } catch (error) {
      if (error instanceof ApiError || attempt === 2) throw error;
    }
  }
}

function checkInScreen() {
  resetSoon();
  const request = { busy: false, keys: new Map() };
  const checkIn = async (text) => {
    if (request.busy) return;
    say("");
    const reference = bookingReference(text);
    if (!reference) {
      say(t("checkin.unknown"));
      return;
    }
    request.busy = true;
    try {
      if (!request.keys.has(reference)) request.keys.set(reference, randomKey());
      const { booking, ticket } = await checkInOnce(reference, request.keys.get(reference));
      const service = services.find((s) => s.id === ticket.service_id) || { name: ticket.service_name || "" };
      const agency = agencies.find((a) => a.id === ticket.agency_id) || { name: "" };
      const note =
        booking.status === "late"
          ? () => t("checkin.late")
          : () => t("checkin.on_time", { time: clock(booking.slot_start) });
      slipScreen(agency, service, ticket, note);
    } catch (error) {
      // answered (too early, used…): trying later is a new check-in, not a replay of this answer
      if (error instanceof ApiError) request.keys.delete(reference);
      say(checkInProblem(error));
      resetSoon();
    } finally {
      request.busy = false;
    }
  };
  show(() => {
    const input = h("input", {
      id: "booking-code",
      name: "booking",
      autocomplete: "off",
      autocapitalize: "off",
      spellcheck: "false",
      required: true,
      "aria-describedby": "booking-code-hint",
    });
    const video = h("video", { id: "scanner", class: "scanner", muted: true, playsinline: true, hidden: true,
      "aria-label": t("checkin.camera") });
    const scan = h("button", { type: "button", id: "scan", hidden: true,
      onclick: () => scanWithCamera(video, (value) => { input.value = value; checkIn(value); }) },
      t("checkin.scan"));
    cameraScanAvailable().then((yes) => { scan.hidden = !yes; });
    const form = h("form", { class: "check-in", id: "check-in-form",
      onsubmit: (event) => { event.preventDefault(); stopCamera(); checkIn(input.value); } },
      h("label", { for: "booking-code" }, t("checkin.code")),
      h("p", { class: "hint", id: "booking-code-hint" }, t("checkin.hint")),
      input,
      h("button", { type: "submit", class: "primary" }, t("checkin.submit")),
    );
    setTimeout(() => input.focus(), 0);
    return [
      h("h2", {}, t("checkin.title")),
      form,
      scan,
      video,
      h("button", { type: "button", class: "back", onclick: () => start() }, t("kiosk.back")),
    ];
  });
}

async function start() {
  clearTimeout(idleTimer);
  say("");
  try {
    await load();
    show(agencyScreen);
  } catch {
    say(t("ticket.offline"));
    idleTimer = setTimeout(start, 5000);
  }
}

show = (render) => {
  stopCamera(); // leaving the check-in screen turns the camera off
  show.current = render;
  screen.replaceChildren(...render().filter(Boolean));
  translatePage();
};

document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  if (show.current) show(show.current);
});
const tick = () => (document.getElementById("clock").textContent = clock(new Date()));
tick();
setInterval(tick, 1000);
translatePage();
start();
