// The public API, as every screen calls it: JSON in and out, the error envelope as an exception.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "HTTP_" + status;
    this.details = error?.details || {};
  }
}

// A random key for Idempotency-Key: crypto.getRandomValues works outside secure contexts too
// (a kiosk on plain http in the mall's network), unlike crypto.randomUUID.
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function api(path, { method = "GET", body, key, idempotencyKey, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers.Authorization = `Bearer ${key}`;
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data?.error);
  return data;
}

// Every page of a cursor-paginated list.
export async function all(path, options = {}) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(
      `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      options,
    );
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// A device's key: taken once from the address's fragment (#key=…, never sent to the server in
// a URL), then kept on the device and removed from the address bar.
export function deviceKey(name) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("key");
  if (given) {
    localStorage.setItem(`mpp.${name}.key`, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(`mpp.${name}.key`);
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A device without a key asks for a pairing code (8 digits an admin created for it) and
// exchanges it once for its own key, kept on the device. Resolves with the key. ``t`` gives
// the words (i18n.js), passed in so this module stays free of the screens' vocabulary.
export function pair(name, container, t) {
  const words = {
    title: t("pair.title"),
    label: t("pair.label"),
    submit: t("pair.submit"),
    wrong: t("pair.wrong"),
  };
  return new Promise((resolve) => {
    const input = element("input", {
      id: "pairing-code",
      name: "code",
      inputmode: "numeric",
      autocomplete: "off",
      pattern: "[0-9]{8}",
      maxlength: "8",
      required: true,
    });
    const message = element("p", { class: "pairing-error", role: "alert" });
    const form = element(
      "form",
      { class: "pairing", id: "pairing" },
      element("h2", {}, words.title),
      element("label", { for: "pairing-code" }, words.label),
      input,
      element("button", { type: "submit", class: "primary" }, words.submit),
      message,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      message.textContent = "";
      try {
        const issued = await api("/v1/pairings", {
          method: "POST",
          body: { code: input.value.trim() },
        });
        localStorage.setItem(`mpp.${name}.key`, issued.key);
        form.remove();
        resolve(issued.key);
      } catch (error) {
        message.textContent = error instanceof ApiError && error.status === 404 ? words.wrong : error.message;
      }
    });
    container.replaceChildren(form);
    input.focus();
  });
}

// Replace a node's children, skipping the null and false a conditional leaves.
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
