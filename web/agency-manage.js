// The agency admin's management on the dashboard, through the public API only: the agency's
// services (plug in, change fee, SLA, hours and requirements, unplug), its counters (add, open,
// close) and its devices' keys (issue with the secret shown once, pairing codes, list, revoke).
// Loaded once and after each change, not on the dashboard's 10-second refresh: a form being
// filled in is never redrawn under the admin's hands.

import { ApiError, all, api, fill, element as h, randomKey } from "/web/api.js";
import { dateTime, rupiah, t } from "/web/i18n.js";

const ROLES = ["officer", "kiosk", "display"];
let ctx = null; // { agency, key, say }
let services = [];
let counters = [];

const path = (tail = "") => `/v1/agencies/${encodeURIComponent(ctx.agency)}${tail}`;

// An API refusal in the admin's words: which fields to check, or the API's own message.
function problem(error) {
  if (!(error instanceof ApiError)) return t("ticket.offline");
  if (error.code === "VALIDATION_FAILED") {
    const fields = Object.keys(error.details || {});
    return t("manage.check_fields", { fields: fields.map((f) => t(`manage.field.${f}`)).join(", ") });
  }
  const known = t(`manage.error.${error.code}`);
  return known.startsWith("manage.error.") ? error.message : known;
}

class HoursError extends Error {}

// "08:00-12:00, 13:00-15:00" ⇄ [{opens, closes}, …]; empty means no hours (always open).
export function parseHours(text) {
  const parts = text.split(/[,;\n]/).map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return null;
  return parts.map((part) => {
    const match = part.match(/^(\d{1,2})[.:](\d{2})\s*[-–]\s*(\d{1,2})[.:](\d{2})$/);
    if (!match) throw new HoursError(part);
    const hhmm = (hh, mm) => `${hh.padStart(2, "0")}:${mm}`;
    return { opens: hhmm(match[1], match[2]), closes: hhmm(match[3], match[4]) };
  });
}

function hoursText(hours) {
  return (hours || []).map((p) => `${p.opens}-${p.closes}`).join(", ");
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

function field(id, label, input, hint = null) {
  return h("p", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    input);
}

function input(id, name, attributes = {}) {
  return h("input", { id, name, ...attributes });
}

// A form posted once per intended change: a retry after a lost answer reuses its key; any answer
// (even a refusal, which the gateway stores too) ends it, so a corrected form is a new request.
function submitter(form, send) {
  let idempotencyKey = randomKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button.disabled) return;
    button.disabled = true;
    ctx.say("");
    try {
      await send(idempotencyKey);
      idempotencyKey = randomKey();
    } catch (error) {
      if (error instanceof ApiError) idempotencyKey = randomKey();
      ctx.say(error instanceof HoursError ? t("manage.bad_hours", { text: error.message }) : problem(error));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function serviceFields(prefix, service = {}) {
  const id = (name) => `${prefix}-${name}`;
  return [
    field(id("fee"), t("manage.fee"), input(id("fee"), "fee_idr", {
      type: "number", min: "0", step: "1000", required: true, value: service.fee_idr ?? 0 })),
    field(id("sla"), t("manage.sla"), input(id("sla"), "sla_minutes", {
      type: "number", min: "1", required: true, value: service.sla_minutes ?? 60 })),
    field(id("hours"), t("manage.hours"), input(id("hours"), "hours", {
      value: hoursText(service.opening_hours), placeholder: "08:00-12:00, 13:00-15:00",
      "aria-describedby": `${id("hours")}-hint` }), t("manage.hours_hint")),
    field(id("requirements"), t("manage.requirements"), h("textarea", {
      id: id("requirements"), name: "requirements", rows: "3", "aria-describedby": `${id("requirements")}-hint` },
      (service.requirements || []).join("\n")), t("manage.requirements_hint")),
  ];
}

function serviceChanges(form) {
  return {
    fee_idr: Number(form.elements.fee_idr.value),
    sla_minutes: Number(form.elements.sla_minutes.value),
    opening_hours: parseHours(form.elements.hours.value),
    requirements: lines(form.elements.requirements.value),
  };
}

function serviceItem(service) {
  const prefix = `svc-${service.id}`;
  const edit = submitter(
    h("form", { class: "manage-form", "data-edit-service": service.code }, ...serviceFields(prefix, service),
      h("button", { type: "submit", class: "primary" }, t("manage.save"))),
    async () => {
      await api(path(`/services/${service.id}`), { method: "PATCH", key: ctx.key, body: serviceChanges(edit) });
      ctx.say(t("manage.saved", { name: service.name }));
      await load();
    },
  );
  const confirm = h("button", { type: "button", class: "danger", hidden: true, "data-confirm-unplug": service.code,
    onclick: async () => {
      try {
        await api(path(`/services/${service.id}`), { method: "DELETE", key: ctx.key });
        ctx.say(t("manage.unplugged", { name: service.name }));
        await load();
      } catch (error) {
        ctx.say(problem(error));
      }
    } }, t("manage.unplug_sure"));
  return h("li", { "data-service": service.code },
    h("div", { class: "manage-head" },
      h("strong", {}, service.name), " ",
      h("span", { class: "muted" }, `${service.code} · ${service.prefix}`),
      h("span", { class: "fee" }, service.fee_idr === 0 ? t("kiosk.free") : rupiah(service.fee_idr)),
      h("span", {}, t("manage.sla_value", { n: service.sla_minutes })),
      h("span", {}, service.opening_hours?.length ? hoursText(service.opening_hours) : t("manage.always_open"))),
    h("details", {}, h("summary", {}, t("manage.change")), edit,
      h("p", { class: "unplug" },
        h("button", { type: "button", class: "danger", onclick: () => { confirm.hidden = false; confirm.focus(); } },
          t("manage.unplug")),
        " ", confirm)),
  );
}

function renderServices() {
  const addForm = submitter(
    h("form", { class: "manage-form", id: "add-service" },
      field("new-code", t("manage.code"), input("new-code", "code", {
        required: true, pattern: "[A-Za-z0-9-]{2,24}", "aria-describedby": "new-code-hint" }), t("manage.code_hint")),
      field("new-name", t("manage.name"), input("new-name", "name", { required: true, minlength: "2", maxlength: "120" })),
      field("new-prefix", t("manage.prefix"), input("new-prefix", "prefix", {
        required: true, pattern: "[A-Za-z]{1,3}", maxlength: "3", "aria-describedby": "new-prefix-hint" }), t("manage.prefix_hint")),
      ...serviceFields("new"),
      h("button", { type: "submit", class: "primary" }, t("manage.add_service"))),
    async (idempotencyKey) => {
      const form = document.getElementById("add-service");
      const body = {
        code: form.elements.code.value.trim().toUpperCase(),
        name: form.elements.name.value.trim(),
        prefix: form.elements.prefix.value.trim().toUpperCase(),
        ...serviceChanges(form),
      };
      const made = await api(path("/services"), { method: "POST", key: ctx.key, body, idempotencyKey });
      form.reset();
      ctx.say(t("manage.added", { name: made.name }));
      await load();
    },
  );
  fill(document.getElementById("manage-services"),
    h("ul", { class: "manage-list", id: "service-list" },
      services.length ? services.map(serviceItem) : h("li", {}, t("manage.no_services"))),
    h("details", { class: "add" }, h("summary", {}, t("manage.add_service")), addForm));
}

function counterItem(counter) {
  const names = counter.service_ids.map((id) => services.find((s) => s.id === id)?.name || id).join(", ");
  return h("li", { "data-counter": counter.name },
    h("div", { class: "manage-head" },
      h("strong", {}, counter.name),
      h("span", { class: counter.is_open ? "state open" : "state" }, t(counter.is_open ? "counter.is_open" : "counter.is_closed")),
      h("span", { class: "muted" }, names),
      h("a", { href: `/counter?counter=${encodeURIComponent(counter.id)}`, class: "console-link" }, t("manage.console")),
      h("button", { type: "button", "data-toggle-counter": counter.name,
        onclick: async () => {
          try {
            await api(path(`/counters/${counter.id}`), { method: "PATCH", key: ctx.key, body: { is_open: !counter.is_open } });
            await load();
          } catch (error) {
            ctx.say(problem(error));
          }
        } }, t(counter.is_open ? "counter.close" : "counter.open"))),
  );
}

function renderCounters() {
  const addForm = submitter(
    h("form", { class: "manage-form", id: "add-counter" },
      field("counter-name", t("manage.counter_name"), input("counter-name", "name", { required: true, maxlength: "40" })),
      h("fieldset", {}, h("legend", {}, t("manage.counter_services")),
        services.map((s) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "service_ids", value: s.id }), " ", s.name))),
      h("button", { type: "submit", class: "primary" }, t("manage.add_counter"))),
    async (idempotencyKey) => {
      const form = document.getElementById("add-counter");
      const body = {
        name: form.elements.name.value.trim(),
        service_ids: [...form.querySelectorAll("input[name=service_ids]:checked")].map((c) => c.value),
      };
      await api(path("/counters"), { method: "POST", key: ctx.key, body, idempotencyKey });
      ctx.say(t("manage.added", { name: body.name }));
      await load();
    },
  );
  fill(document.getElementById("manage-counters"),
    h("ul", { class: "manage-list", id: "counter-list" },
      counters.length ? counters.map(counterItem) : h("li", {}, t("manage.no_counters"))),
    h("details", { class: "add" }, h("summary", {}, t("manage.add_counter")), addForm));
}

function roleSelect(id) {
  return h("select", { id, name: "role" }, ROLES.map((r) => h("option", { value: r }, t(`manage.role.${r}`))));
}

function keyRow(k) {
  const revocable = !k.revoked_at && ROLES.includes(k.role);
  return h("tr", { "data-key": k.id },
    h("td", {}, t(`manage.role.${k.role}`)),
    h("td", {}, k.label || "—"),
    h("td", {}, dateTime(k.created_at)),
    h("td", {}, k.revoked_at ? t("manage.revoked_at", { when: dateTime(k.revoked_at) }) : t("manage.active")),
    h("td", {}, revocable
      ? h("button", { type: "button", class: "danger", "aria-label": t("manage.revoke_named", { label: k.label || t(`manage.role.${k.role}`) }),
          onclick: async () => {
            try {
              await api(path(`/api-keys/${k.id}`), { method: "DELETE", key: ctx.key });
              ctx.say(t("manage.revoked"));
              await loadKeys();
            } catch (error) {
              ctx.say(problem(error));
            }
          } }, t("manage.revoke"))
      : null));
}

async function loadKeys() {
  const keys = await all(path("/api-keys"), { key: ctx.key });
  fill(document.getElementById("key-list"), keys.map(keyRow));
}

function renderKeys() {
  const shown = h("div", { id: "issued", class: "issued", "aria-live": "polite" });
  const issue = submitter(
    h("form", { class: "manage-form inline", id: "issue-key" },
      field("key-role", t("manage.role"), roleSelect("key-role")),
      field("key-label", t("manage.label"), input("key-label", "label", { maxlength: "80" })),
      h("button", { type: "submit", class: "primary" }, t("manage.issue"))),
    async (idempotencyKey) => {
      const form = document.getElementById("issue-key");
      const body = { role: form.elements.role.value, label: form.elements.label.value.trim() || null };
      const made = await api(path("/api-keys"), { method: "POST", key: ctx.key, body, idempotencyKey });
      form.reset();
      fill(shown,
        h("p", { class: "warn" }, t("manage.secret_once")),
        h("p", {}, t(`manage.role.${made.role}`), made.label ? ` · ${made.label}` : "", ": ",
          h("code", { id: "issued-secret" }, made.key)));
      await loadKeys();
    },
  );
  const pairForm = submitter(
    h("form", { class: "manage-form inline", id: "pairing-code-form" },
      field("pair-role", t("manage.role"), roleSelect("pair-role")),
      field("pair-label", t("manage.label"), input("pair-label", "label", { maxlength: "80" })),
      h("button", { type: "submit", class: "primary" }, t("manage.pairing"))),
    async () => {
      const form = document.getElementById("pairing-code-form");
      const body = { role: form.elements.role.value, label: form.elements.label.value.trim() || null };
      const made = await api(path("/pairing-codes"), { method: "POST", key: ctx.key, body });
      form.reset();
      fill(shown,
        h("p", {}, t("manage.pairing_for", { role: t(`manage.role.${made.role}`) })),
        h("p", { class: "pairing-code", id: "issued-code" }, made.code),
        h("p", { class: "hint" }, t("manage.pairing_until", { when: dateTime(made.expires_at) })));
      await loadKeys();
    },
  );
  fill(document.getElementById("manage-keys"),
    h("h3", {}, t("manage.issue_title")), issue,
    h("h3", {}, t("manage.pairing_title")), pairForm, shown,
    h("table", { class: "keys" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("manage.role")),
        h("th", { scope: "col" }, t("manage.label")),
        h("th", { scope: "col" }, t("manage.created")),
        h("th", { scope: "col" }, t("manage.status")),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("manage.revoke"))))),
      h("tbody", { id: "key-list" })));
}

export async function load() {
  try {
    [services, counters] = await Promise.all([
      all(`/v1/services?agency=${encodeURIComponent(ctx.agency)}`),
      all(path("/counters"), { key: ctx.key }),
    ]);
    renderServices();
    renderCounters();
    ctx.onServices?.(services);
  } catch (error) {
    ctx.say(problem(error));
  }
}

export async function startManaging(context) {
  ctx = context;
  await load();
  renderKeys();
  try {
    await loadKeys();
  } catch (error) {
    ctx.say(problem(error));
  }
}

// The language changed: draw again in the new words (forms are redrawn empty).
export async function redraw() {
  if (!ctx) return;
  await load();
  renderKeys();
  await loadKeys().catch(() => {});
}
