// The mall admin's screen (/mall): the mall_admin key typed once and kept on this device (never
// in an address, never logged); agencies (register one: its first agency_admin key shown once),
// each agency's keys (issue, list, revoke; pairing codes for its devices, mall-wide boards too),
// the mall_admin keys (the one in use marked, a warning before revoking it), and the day's queue
// figures per agency with this month's IKM. Existing API routes only (docs/api-guide.md).

import { ApiError, all, api, fill, element as h, randomKey } from "/web/api.js";
import { clock, count, dateTime, decimal, setZone, t, toggleLanguage, translatePage } from "/web/i18n.js";

const STORE = "mpp.mall.key";
const REFRESH_MS = 30_000;
let key = localStorage.getItem(STORE);
let me = null; // the key in use (GET /v1/api-keys/current): its id marks its row
let agencies = [];
let picked = null; // the agency whose keys are shown
const $ = (id) => document.getElementById(id);
const notice = $("notice");

function say(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

function call(path, options = {}) {
  return api(path, { key, ...options });
}

// A 401 means the key was revoked (perhaps from this page): forget it and ask for another.
function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    if (key) signOut(t("mall.wrong_key"));
    return;
  }
  const fields = Object.entries(error.details || {}).map(([f, m]) => `${f}: ${[m].flat().join(", ")}`);
  say(error instanceof ApiError ? [error.message, ...fields].join(" · ") : t("ticket.offline"));
}

// A secret (a key) shown once: copied by the admin, then dismissed and gone from the page.
function showSecret(container, secret, heading) {
  fill(
    container,
    h("div", { class: "secret" },
      h("p", {}, heading ? h("strong", {}, heading, " ") : null, t("mall.secret")),
      h("code", { class: "secret-key" }, secret),
      h("button", { type: "button", onclick: () => fill(container) }, t("mall.secret_done"))),
  );
}

// A row's revoke button: it asks first (revoking the key in use says this page will lock).
function revokeButton(container, question, revoke) {
  return h("button", {
    type: "button",
    class: "danger revoke",
    onclick: () => confirmRevoke(container, question, () => revoke().catch(failed)),
  }, t("mall.revoke"));
}


function confirmRevoke(container, text, revoke) {
  const no = h("button", { type: "button", onclick: () => fill(container) }, t("mall.cancel"));
  const yes = h("button", {
    type: "button",
    class: "danger confirm-revoke",
    onclick: async () => {
      fill(container);
      await revoke();
    },
  }, t("mall.confirm"));
  fill(container, h("div", { class: "confirm", role: "alert" }, h("p", {}, text), yes, " ", no));
  no.focus();
}

function keyState(k) {
  if (!k.revoked_at) return t("mall.active");
  return h("span", { class: "revoked" }, t("mall.revoked", { time: dateTime(k.revoked_at) }));
}

// A key's role in words; a board for the whole mall says so.
function roleWords(role, scope) {
  const words = t(`mall.role.${role}`);
  return role === "display" && scope === "mall" ? `${words} · ${t("mall.scope.mall")}` : words;
}

// -- overview: the day's queue figures per agency, this month's IKM

function minutes(seconds) {
  return seconds == null ? "—" : t("mall.minutes", { n: count(Math.round(seconds / 60)) });
}

async function refreshOverview() {
  const [stats, board] = await Promise.all([call("/v1/stats/queue"), api("/v1/leaderboard?period=month")]);
  const o = stats.overall;
  const kpi = (label, value, id) => [h("dt", {}, t(label)), h("dd", { id }, value)];
  fill(
    $("kpis"),
    kpi("mall.tickets", count(o.tickets), "kpi-tickets"),
    kpi("mall.served", count(o.served), "kpi-served"),
    kpi("mall.wait", minutes(o.waiting.median_seconds), "kpi-wait"),
    kpi("mall.breaches", count(o.sla_breaches), "kpi-breaches"),
    kpi("mall.no_shows", count(o.no_shows), "kpi-no-shows"),
  );
  const byAgency = new Map(stats.by_agency.map((s) => [s.agency_id, s]));
  const ikm = new Map(board.items.map((i) => [i.agency_id, i]));
  fill(
    $("by-agency"),
    agencies.map((a) => {
      const s = byAgency.get(a.id);
      const i = ikm.get(a.id);
      return h("tr", { "data-agency": a.id },
        h("th", { scope: "row" }, a.name),
        h("td", {}, count(s?.tickets ?? 0)),
        h("td", {}, count(s?.served ?? 0)),
        h("td", {}, minutes(s?.waiting.median_seconds)),
        h("td", {}, count(s?.sla_breaches ?? 0)),
        h("td", { class: "ikm" },
          i?.converted_ikm ? `${decimal(i.converted_ikm)} (${i.grade})` : "—",
          i?.converted_ikm && !i.representative ? h("span", { class: "warn" }, ` · ${t("mall.unrepresentative")}`) : null));
    }),
  );
}

// -- agencies

function renderAgencies() {
  fill(
    $("agency-list"),
    agencies.map((a) =>
      h("li", { "data-agency": a.code },
        h("span", {}, `${a.name} (${a.code})`), " ",
        h("button", {
          type: "button",
          class: picked?.id === a.id ? "picked" : null,
          "aria-pressed": String(picked?.id === a.id),
          "data-manage": a.code,
          onclick: () => pick(a).catch(failed),
        }, t("mall.manage")))),
  );
}

async function loadAgencies() {
  agencies = await all("/v1/agencies");
  renderAgencies();
}

$("register").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  const body = { code: $("agency-code").value.trim().toUpperCase(), name: $("agency-name").value.trim() };
  try {
    const created = await call("/v1/agencies", { method: "POST", body, idempotencyKey: randomKey() });
    event.target.reset();
    showSecret($("agency-secret"), created.admin_api_key.key, t("mall.registered", { name: created.name }));
    await loadAgencies();
    await pick(agencies.find((a) => a.id === created.id) || created);
    await refreshOverview();
  } catch (error) {
    failed(error);
  }
});

// -- one agency's keys and pairing codes

async function pick(agency) {
  if (picked?.id !== agency.id) {
    fill($("key-secret"));
    fill($("pair-code"));
    fill($("agency-confirm"));
  }
  picked = agency;
  renderAgencies();
  $("keys-title").textContent = t("mall.keys_of", { name: agency.name });
  $("agency-keys-panel").hidden = false;
  $("keys-hint").hidden = true;
  await loadAgencyKeys();
}

async function loadAgencyKeys() {
  const agency = picked;
  const keys = await all(`/v1/agencies/${encodeURIComponent(agency.id)}/api-keys`, { key });
  if (picked !== agency) return;
  fill(
    $("agency-keys"),
    keys.map((k) =>
      h("tr", { "data-key": k.id, class: k.revoked_at ? "revoked" : null },
        h("td", {}, k.label || t("mall.none")),
        h("td", {}, roleWords(k.role, k.scope)),
        h("td", {}, dateTime(k.created_at)),
        h("td", {}, keyState(k)),
        h("td", {}, k.revoked_at ? null : revokeButton(
          $("agency-confirm"),
          t("mall.revoke_sure", { label: k.label || t(`mall.role.${k.role}`) }),
          async () => {
            const path = `/v1/agencies/${encodeURIComponent(agency.id)}/api-keys/${encodeURIComponent(k.id)}`;
            await call(path, { method: "DELETE" });
            await loadAgencyKeys();
          },
        )))),
  );
}

function scopeFor(role, scope) {
  return role === "display" ? scope : undefined; // kiosks are mall-wide, the others their agency's
}

$("issue").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  const role = $("issue-role").value;
  const body = {
    role,
    scope: scopeFor(role, $("issue-scope").value),
    label: $("issue-label").value.trim() || undefined,
  };
  try {
    const issued = await call(`/v1/agencies/${encodeURIComponent(picked.id)}/api-keys`, {
      method: "POST", body, idempotencyKey: randomKey(),
    });
    event.target.reset();
    showSecret($("key-secret"), issued.key, t(`mall.role.${issued.role}`));
    await loadAgencyKeys();
  } catch (error) {
    failed(error);
  }
});

$("pair").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  const role = $("pair-role").value;
  const body = {
    role,
    scope: scopeFor(role, $("pair-scope").value),
    label: $("pair-label").value.trim() || undefined,
  };
  try {
    const made = await call(`/v1/agencies/${encodeURIComponent(picked.id)}/pairing-codes`, { method: "POST", body });
    event.target.reset();
    fill(
      $("pair-code"),
      h("div", { class: "secret" },
        h("p", {}, `${t("mall.pair_code")} (${roleWords(made.role, made.scope)}): `,
          h("strong", { class: "pairing-code", id: "pairing-code-value" }, made.code)),
        h("p", {}, t("mall.pair_until", { time: clock(made.expires_at) }))),
    );
  } catch (error) {
    failed(error);
  }
});

// -- the mall_admin keys

async function loadAdminKeys() {
  const keys = await all("/v1/api-keys", { key });
  fill(
    $("admin-keys"),
    keys.map((k) => {
      const own = k.id === me?.id;
      return h("tr", { "data-key": k.id, class: k.revoked_at ? "revoked" : null },
        h("td", {}, k.label || t("mall.none"), own ? h("span", { class: "own" }, ` (${t("mall.this_key")})`) : null),
        h("td", {}, dateTime(k.created_at)),
        h("td", {}, keyState(k)),
        h("td", {}, k.revoked_at ? null : revokeButton(
          $("admin-confirm"),
          own ? t("mall.revoke_own") : t("mall.revoke_sure", { label: k.label || k.id }),
          async () => {
            await call(`/v1/api-keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
            if (own) signOut(t("mall.wrong_key"));
            else await loadAdminKeys();
          },
        )));
    }),
  );
}

$("admin-issue").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  const body = { label: $("admin-label").value.trim() || undefined };
  try {
    const issued = await call("/v1/api-keys", { method: "POST", body, idempotencyKey: randomKey() });
    event.target.reset();
    showSecret($("admin-secret"), issued.key, t("mall.role.mall_admin"));
    await loadAdminKeys();
  } catch (error) {
    failed(error);
  }
});

// -- signing in and out: the key typed once, kept on this device

function signOut(message) {
  localStorage.removeItem(STORE);
  key = null;
  me = null;
  picked = null;
  $("agency-keys-panel").hidden = true;
  $("keys-hint").hidden = false;
  $("keys-title").textContent = t("mall.agency_keys");
  $("admin").hidden = true;
  $("logout").hidden = true;
  for (const id of ["agency-secret", "key-secret", "pair-code", "admin-secret"]) fill($(id));
  showLogin(message);
}

function showLogin(message = "") {
  const input = h("input", { id: "mall-key", name: "key", type: "password", autocomplete: "off", required: true });
  const error = h("p", { class: "pairing-error", role: "alert" }, message);
  const form = h("form", { class: "login", id: "login-form" },
    h("h2", {}, t("mall.login")),
    h("label", { for: "mall-key" }, t("mall.key")),
    input,
    h("p", { class: "hint" }, t("mall.key_hint")),
    h("button", { type: "submit", class: "primary" }, t("mall.enter")),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      me = await api("/v1/api-keys/current", { key: input.value.trim() });
    } catch (failure) {
      const status = failure instanceof ApiError ? failure.status : 0;
      const words = { 401: "mall.wrong_key", 403: "mall.not_admin" }[status] || "ticket.offline";
      error.textContent = t(words);
      return;
    }
    key = input.value.trim();
    localStorage.setItem(STORE, key);
    fill($("login"));
    await signedIn();
  });
  fill($("login"), form);
  input.focus();
}

async function refresh() {
  if (!key) return;
  try {
    await refreshOverview();
    say("");
  } catch (error) {
    failed(error);
  }
}

// The panels show once filled for this key (never a previous key's lists, never half-loaded).
async function signedIn() {
  try {
    me = me || (await call("/v1/api-keys/current"));
    await loadAgencies();
    await Promise.all([refreshOverview(), loadAdminKeys()]);
    say("");
  } catch (error) {
    failed(error);
  }
  if (key) {
    $("admin").hidden = false;
    $("logout").hidden = false;
  }
}

$("logout").addEventListener("click", () => signOut(""));
$("lang").addEventListener("click", () => {
  toggleLanguage();
  translatePage();
  if (!key) showLogin();
  else {
    if (picked) pick(picked).catch(failed);
    renderAgencies();
    loadAdminKeys().catch(failed);
    refresh();
  }
});

async function start() {
  translatePage();
  try {
    setZone(await api("/v1/mall"));
  } catch {
    say(t("ticket.offline"));
  }
  const tick = () => ($("clock").textContent = clock(new Date()));
  tick();
  setInterval(tick, 1000);
  if (key) await signedIn();
  else showLogin();
  setInterval(refresh, REFRESH_MS);
}

start();
