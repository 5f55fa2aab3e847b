// The citizen's own ticket, opened from the slip's QR: status, place in line, estimated wait,
// then the QRIS to pay and the receipt, then the rating form. Read with the ticket's access code.

import { ApiError, api, fill, element as h } from "/web/api.js";
import { SKM, clock, language, rupiah, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";

const ticketId = decodeURIComponent(location.pathname.split("/").pop());
const code = new URLSearchParams(location.search).get("code") || "";
const FINAL = new Set(["done", "no_show", "cancelled", "transferred"]);
const POLL_MS = 5000;

const ticketBox = document.getElementById("ticket");
const paymentBox = document.getElementById("payment");
const ratingBox = document.getElementById("rating");
const notice = document.getElementById("notice");
let last = { ticket: null, payment: null };
let rated = false;
let ratingShownFor = null;

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

function read(part = "") {
  return api(`/v1/tickets/${encodeURIComponent(ticketId)}${part}?code=${encodeURIComponent(code)}`);
}

function renderTicket(ticket) {
  const waiting = ticket.status === "waiting";
  fill(ticketBox,
    h("p", { class: "number", id: "number" }, ticket.number),
    h("p", { class: "service" }, ticket.service_name || ""),
    h("p", { class: `status ${ticket.status}`, id: "status" }, t(`ticket.status.${ticket.status}`)),
    ticket.status === "called" || ticket.status === "serving"
      ? h("p", { class: "go" }, t("ticket.go_to", { counter: ticket.counter_name || "" }))
      : null,
    waiting
      ? h("dl", { class: "facts" },
          h("dt", {}, t("ticket.position")), h("dd", { id: "position" }, ticket.position ?? "—"),
          h("dt", {}, t("ticket.ahead")), h("dd", {}, ticket.ahead ?? "—"),
          h("dt", {}, t("ticket.eta")),
          h("dd", { id: "eta" }, ticket.estimated_wait_minutes == null ? "—" : t("ticket.minutes", { n: ticket.estimated_wait_minutes })))
      : null,
    ticket.transferred_to
      ? h("a", {
          class: "button",
          href: `/t/${ticket.transferred_to.id}?code=${encodeURIComponent(ticket.transferred_to.access_code || "")}`,
        }, t("ticket.transferred_to"), " ", ticket.transferred_to.number || "")
      : null,
    h("p", { class: "issued" }, clock(ticket.issued_at)),
    waiting
      ? h("button", { type: "button", class: "cancel", id: "cancel", onclick: confirmCancel }, t("ticket.cancel"))
      : null,
  );
}

// two taps: a slip of the thumb never gives up a place in line
function confirmCancel(event) {
  const button = event.currentTarget;
  if (!button.dataset.sure) {
    button.dataset.sure = "1";
    button.textContent = t("ticket.cancel_sure");
    return;
  }
  button.disabled = true;
  api(`/v1/tickets/${encodeURIComponent(ticketId)}?code=${encodeURIComponent(code)}`, { method: "DELETE" })
    .then((ticket) => {
      last.ticket = ticket;
      renderTicket(ticket);
    })
    .catch((error) => {
      say(error instanceof ApiError ? error.message : t("error.generic"));
      refresh();
    });
}

function renderPayment(payment) {
  if (!payment) {
    fill(paymentBox);
    return;
  }
  const pending = payment.status === "pending";
  fill(paymentBox,
    h("h2", {}, t("pay.title")),
    h("p", { class: "amount" }, t("pay.amount"), ": ", h("strong", { id: "amount" }, rupiah(payment.amount_idr))),
    h("p", { class: `pay-status ${payment.status}`, id: "pay-status" }, t(`pay.status.${payment.status}`)),
    pending && payment.qris
      ? h("figure", { class: "qris" },
          h("img", { src: payment.qris.image_svg, alt: "QRIS", width: "260", height: "260", id: "qris" }),
          h("figcaption", {}, t("pay.scan"), " · ", t("pay.expires", { time: clock(payment.expires_at) })))
      : null,
    // the invoice exists at once; its QRIS comes once the provider has made the charge
    pending && !payment.qris && payment.charge_status !== "ready"
      ? h("p", { class: "preparing", id: "pay-preparing", role: "status" }, t("pay.preparing"))
      : null,
    payment.receipt
      ? h("dl", { class: "receipt", id: "receipt" },
          h("dt", {}, t("pay.receipt")), h("dd", {}, payment.receipt.number),
          h("dt", {}, t("pay.amount")), h("dd", {}, rupiah(payment.receipt.amount_idr)),
          h("dd", {}, clock(payment.receipt.paid_at)))
      : null,
  );
}

function renderRating(ticket) {
  if (rated || !ticket.rating?.token) return;
  if (ratingShownFor === ticket.rating.token) return;
  ratingShownFor = ticket.rating.token;
  const token = ticket.rating.token;
  const form = h("form", { id: "rate-form", class: "rate" },
    h("h2", {}, t("rate.title")),
    h("fieldset", { class: "stars" },
      h("legend", {}, t("rate.stars")),
      [1, 2, 3, 4, 5].map((n) =>
        h("label", {},
          h("input", { type: "radio", name: "stars", value: String(n), required: true }),
          h("span", { "aria-hidden": "true" }, "★".repeat(n)),
          h("span", { class: "sr-only" }, `${n}`))),
    ),
    h("p", { class: "low", id: "low", hidden: true }, t("rate.low")),
    h("details", { class: "survey" },
      h("summary", {}, t("rate.survey")),
      SKM.map(([element, question, gloss, answers]) =>
        h("fieldset", { class: "question" },
          h("legend", {}, language() === "id" ? question : gloss),
          answers.map((answer, index) =>
            h("label", {},
              h("input", { type: "radio", name: element, value: String(index + 1) }),
              " ", answer))))),
    h("label", { class: "comment" }, t("rate.comment"),
      h("textarea", { name: "comment", maxlength: "1000", rows: "3" })),
    h("label", { class: "complaint" },
      h("input", { type: "checkbox", name: "complaint" }), " ", t("rate.complaint")),
    h("button", { type: "submit", class: "primary" }, t("rate.send")),
  );
  form.addEventListener("change", (event) => {
    if (event.target.name !== "stars") return;
    const low = Number(event.target.value) <= 2;
    form.querySelector("#low").hidden = !low;
    form.elements.complaint.checked = low;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const answers = {};
    for (const [element] of SKM) if (data.get(element)) answers[element] = Number(data.get(element));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("/v1/ratings", {
        method: "POST",
        body: {
          token,
          stars: Number(data.get("stars")),
          answers,
          comment: data.get("comment") || null,
          flag_complaint: data.get("complaint") === "on",
        },
      });
      thank(t("rate.thanks"));
    } catch (error) {
      if (error instanceof ApiError && error.code === "TOKEN_USED") thank(t("rate.used"));
      else {
        say(error instanceof ApiError ? error.message : t("error.generic"));
        button.disabled = false;
      }
    }
  });
  fill(ratingBox, form);
}

function thank(text) {
  rated = true;
  fill(ratingBox, h("p", { class: "thanks", id: "thanks" }, text));
}

async function refresh() {
  try {
    const ticket = await read();
    last.ticket = ticket;
    renderTicket(ticket);
    // when the citizen first sees their ticket (bench/web_page.py reads it)
    if (!performance.getEntriesByName("mpp-ticket-shown").length) performance.mark("mpp-ticket-shown");
    if (ticket.payment) {
      last.payment = await read("/payment");
      renderPayment(last.payment);
    }
    renderRating(ticket);
    say("");
    const settled = !ticket.payment || !["pending"].includes(last.payment?.status);
    return !(FINAL.has(ticket.status) && settled && (rated || !ticket.rating?.token));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      fill(ticketBox, h("p", { class: "unknown" }, t("ticket.unknown")));
      return false;
    }
    say(t("ticket.offline"));
    return true;
  }
}

async function loop() {
  // the ticket first: the mall's zone (for the clock) arrives alongside, not before it
  api("/v1/mall")
    .then((mall) => {
      setZone(mall);
      if (last.ticket) renderTicket(last.ticket);
    })
    .catch(() => {}); // the zone stays the default (WIB) until the next load
  while (await refresh()) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
}

document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  translatePage();
  ratingShownFor = null;
  if (last.ticket) {
    renderTicket(last.ticket);
    renderPayment(last.payment);
    renderRating(last.ticket);
  }
});
translatePage();
loop();
