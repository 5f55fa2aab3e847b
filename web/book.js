// Booking from a phone: service → day → slot → NIK (never shown whole) → the booking's code and
// its QR (the kiosk checks it in); /book?booking=<id> shows it again and cancels it.

import { ApiError, all, api, element as h, randomKey } from "/web/api.js";
import { clock, dayLabel, mallDate, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";
import { qrImage } from "/web/qr.js";

const screen = document.getElementById("screen");
const notice = document.getElementById("notice");
const DAYS = 7;
let current = () => [];

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

function show(render) {
  current = render;
  screen.replaceChildren(...render().flat().filter(Boolean));
  translatePage();
}

function failed(error) {
  say(error instanceof ApiError ? error.message : t("error.generic"));
}

async function pickService() {
  const services = (await all("/v1/services")).filter((s) => s.active && s.booking);
  show(() => [
    h("h2", {}, t("book.pick_service")),
    h("div", { class: "choices" },
      services.map((s) =>
        h("button", { type: "button", class: "choice", "data-service": s.code, onclick: () => pickDay(s) },
          h("strong", {}, s.name)))),
  ]);
}

function pickDay(service) {
  const days = Array.from({ length: DAYS }, (_, i) => mallDate(i));
  show(() => [
    h("h2", {}, service.name, " · ", t("book.pick_day")),
    h("div", { class: "choices days" },
      days.map((day) =>
        h("button", { type: "button", class: "choice", "data-day": day, onclick: () => pickSlot(service, day) },
          dayLabel(day)))),
  ]);
}

async function pickSlot(service, day) {
  say("");
  let slots;
  try {
    slots = await api(`/v1/services/${service.id}/slots?date=${day}`);
  } catch (error) {
    failed(error);
    return;
  }
  show(() => [
    h("h2", {}, dayLabel(day), " · ", t("book.pick_slot")),
    slots.items.length === 0 ? h("p", {}, t("book.none")) : null,
    h("div", { class: "choices slots" },
      slots.items.map((slot) =>
        h("button", {
          type: "button",
          class: "choice",
          "data-slot": slot.start,
          disabled: !slot.bookable,
          onclick: () => details(service, slot),
        }, clock(slot.start), " · ", slot.bookable ? t("book.left", { n: slot.remaining }) : t("book.full")))),
    h("button", { type: "button", class: "back", onclick: () => pickDay(service) }, "←"),
  ]);
}

function details(service, slot) {
  const request = { key: randomKey() }; // a retried submit books once
  const form = h("form", { id: "book-form", class: "book" },
    h("h2", {}, service.name, " · ", dayLabel(slot.start.slice(0, 10)), " ", clock(slot.start)),
    h("label", { for: "nik" }, t("book.nik")),
    // a password field: the NIK is not left readable on a shared screen
    h("input", { id: "nik", name: "nik", type: "password", inputmode: "numeric", autocomplete: "off",
      pattern: "[0-9]{16}", minlength: "16", maxlength: "16", required: true }),
    h("p", { class: "hint" }, t("book.nik_hint")),
    h("label", { for: "phone" }, t("book.phone")),
    h("input", { id: "phone", name: "phone", type: "tel", autocomplete: "tel" }),
    h("button", { type: "submit", class: "primary" }, t("book.submit")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const booking = await api("/v1/bookings", {
        method: "POST",
        body: {
          service_id: service.id,
          slot_start: slot.start,
          nik: form.elements.nik.value,
          phone: form.elements.phone.value || null,
        },
        idempotencyKey: request.key,
      });
      form.elements.nik.value = "";
      history.replaceState(null, "", `/book?booking=${booking.id}`);
      showBooking(booking, service);
    } catch (error) {
      failed(error);
      button.disabled = false;
    }
  });
  show(() => [form]);
}

function showBooking(booking, service) {
  const link = `${location.origin}/book?booking=${booking.id}`;
  show(() => [
    h("h2", {}, booking.status === "booked" ? t("book.done") : t(`book.status.${booking.status}`)),
    h("p", { class: "service" }, service?.name || ""),
    h("p", { class: "slot", id: "slot" }, dayLabel(booking.slot_start.slice(0, 10)), " ", clock(booking.slot_start)),
    h("p", { id: "booking-status" }, t(`book.status.${booking.status}`)),
    h("p", {}, "NIK ", h("span", { id: "nik-masked" }, booking.nik)),
    h("p", {}, t("book.reference"), ": ", h("code", { id: "reference" }, booking.id)),
    booking.status === "booked"
      ? [
          qrImage(link, t("book.show_qr")),
          h("p", { class: "hint" }, t("book.show_qr")),
          h("p", {}, t("book.check_in", { from: clock(booking.check_in_opens_at), to: clock(booking.check_in_closes_at) })),
          h("button", { type: "button", class: "cancel", id: "cancel-booking", onclick: () => cancel(booking, service) }, t("book.cancel")),
        ]
      : null,
  ]);
}

async function cancel(booking, service) {
  try {
    showBooking(await api(`/v1/bookings/${booking.id}`, { method: "DELETE" }), service);
  } catch (error) {
    failed(error);
  }
}

document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  show(current);
});

async function start() {
  translatePage();
  try {
    setZone(await api("/v1/mall"));
    const reference = new URLSearchParams(location.search).get("booking");
    if (reference) {
      const booking = await api(`/v1/bookings/${encodeURIComponent(reference)}`);
      const services = await all("/v1/services");
      showBooking(booking, services.find((s) => s.id === booking.service_id));
    } else {
      await pickService();
    }
  } catch (error) {
    failed(error);
  }
}

start();
