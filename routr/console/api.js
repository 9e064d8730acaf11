// The REST API of this server, from this origin. The token lives in sessionStorage (gone
// when the tab closes); the password is never stored anywhere.

export const BASE = "/api/v1beta1";
const TOKEN = "routr.token";
const USER = "routr.user";

export class ApiError extends Error {
  /** ``status`` 0 means the server could not be reached at all. */
  constructor(status, message, reason, data) {
    super(reason || message);
    this.status = status;
    this.title = message;
    this.reason = reason || message;
    this.data = data;
  }

  /** The 422 problems, ``[{path, problem}]``. */
  get problems() {
    return this.status === 422 && Array.isArray(this.data) ? this.data : [];
  }
}

const listeners = { unauthorized: [], reachable: [] };

/** ``fn(reason)`` when the token is refused or expires: the app goes back to login. */
export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

/** ``fn(ok)`` after each request: whether the server answered. */
export function onReachable(fn) {
  listeners.reachable.push(fn);
}

let expiryTimer = 0;

export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  user: () => sessionStorage.getItem(USER),
  save(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, user);
    watchExpiry(token);
  },
  clear() {
    clearTimeout(expiryTimer);
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

// Open streams never see a 401, so the token's own expiry sends the user back to login.
function watchExpiry(token) {
  clearTimeout(expiryTimer);
  const exp = expiryOf(token);
  if (exp === null) return;
  const ms = exp * 1000 - Date.now();
  expiryTimer = setTimeout(() => unauthorized("the token has expired; sign in again"),
    Math.max(0, Math.min(ms, 2 ** 31 - 1)));
}

function expiryOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

/** The token ``used`` was refused. A stale answer (sent before a new sign-in) is ignored. */
export function unauthorized(reason, used = session.token()) {
  if (used !== session.token()) return;
  session.clear();
  for (const fn of listeners.unauthorized) fn(reason);
}

export function reachable(ok) {
  for (const fn of listeners.reachable) fn(ok);
}

export function resumeSession() {
  const token = session.token();
  if (token) watchExpiry(token);
  return Boolean(token);
}

function basic(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  return "Basic " + btoa(String.fromCharCode(...bytes));
}

export async function login(username, password) {
  const body = await send("GET", "/token", { headers: { Authorization: basic(username, password) }, anonymous: true });
  session.save(body.data, username);
  return body.data;
}

export function url(path, params = {}) {
  const u = new URL(BASE + path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

export function authHeaders() {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** One request; resolves to the envelope, or throws ApiError with the server's words. */
export async function send(method, path, { params, json, yaml, headers = {}, anonymous = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  const used = session.token();
  if (!anonymous) Object.assign(init.headers, authHeaders());
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (yaml !== undefined) {
    init.headers["Content-Type"] = "application/yaml";
    init.body = yaml;
  }
  let response;
  try {
    response = await fetch(url(path, params), init);
  } catch {
    reachable(false);
    throw new ApiError(0, "No connection", "the server cannot be reached; check that it is running");
  }
  reachable(true);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body?.message || response.statusText || "Error";
    const reason = body?.reason || `${response.status} ${message}`;
    if (response.status === 401 && !anonymous) unauthorized(reason, used);
    throw new ApiError(response.status, message, reason, body?.data);
  }
  return body;
}

export const get = (path, params) => send("GET", path, { params });
export const data = async (path, params) => (await get(path, params)).data;
