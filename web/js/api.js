// The API client: JSON over fetch on the same origin, the session (access and refresh tokens),
// one refresh at a time when the access token expires, errors as ApiError with the server's reason.

const SESSION_KEY = "pictor.session";
let session = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
let refreshing = null;

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const detail = body?.details?.[0] || {};
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.reason = detail.reason || "";
    this.metadata = detail.metadata || {};
    this.retryAfter = retryAfter;
  }
}

/** A request that never reached the server or whose answer never came back. */
export class NetworkError extends Error {}

export function currentSession() {
  return session;
}

export function me() {
  return session?.user || null;
}

function store(next) {
  session = next;
  if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else localStorage.removeItem(SESSION_KEY);
  document.dispatchEvent(new CustomEvent("pictor:session", { detail: next }));
}

export function updateMe(user) {
  if (session) store({ ...session, user });
}

function keep(reply) {
  store({ user: reply.user, access_token: reply.access_token, refresh_token: reply.refresh_token,
          expires_at: Date.now() + Number(reply.expires_in || 0) * 1000 });
}

async function send(path, { method = "GET", body, raw, headers = {}, token, signal }) {
  const init = { method, headers: { ...headers }, signal };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new NetworkError(`no answer from the server (${e.message})`);
  }
  const text = await response.text().catch(() => {
    throw new NetworkError("the connection dropped while the answer arrived");
  });
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { message: text };
  }
  if (!response.ok) throw new ApiError(response.status, json, Number(response.headers.get("retry-after")) || 0);
  return json;
}

async function refresh() {
  if (!session?.refresh_token) throw new ApiError(401, { message: "signed out" });
  refreshing ??= send("/v1/sessions:refresh", { method: "POST", body: { refresh_token: session.refresh_token } })
    .then(keep)
    .catch((e) => {
      if (e instanceof ApiError && e.status === 401) store(null);
      throw e;
    })
    .finally(() => { refreshing = null; });
  return refreshing;
}

/**
 * Call the API. The access token rides in the Authorization header (never in a URL); a token
 * about to expire is refreshed first, and a 401 TOKEN_EXPIRED is refreshed and retried once.
 * A 503 that says when to come back (Retry-After) is retried once after that wait.
 */
export async function api(path, options = {}) {
  if (session && session.expires_at - Date.now() < 30_000) await refresh().catch(() => {});
  const call = () => send(path, { ...options, token: options.anonymous ? undefined : session?.access_token });
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 401 && e.reason === "TOKEN_EXPIRED" && session) {
      await refresh();
      return call();
    }
    if (e.status === 503 && e.retryAfter && e.retryAfter <= 10 && !options.noRetry) {
      await new Promise((r) => setTimeout(r, e.retryAfter * 1000));
      return call();
    }
    throw e;
  }
}

export async function signUp(fields) {
  keep(await send("/v1/accounts", { method: "POST", body: fields }));
}

/** `code`: with two-factor sign-in on, the authenticator's 6 digits (or a recovery code). */
export async function signIn(username, password, code = "") {
  const body = { username, password };
  if (/^\d{6}$/.test(code)) body.totp_code = code;
  else if (code) body.recovery_code = code;
  keep(await send("/v1/sessions", { method: "POST", body }));
}

export async function signOut() {
  const token = session?.refresh_token;
  store(null);
  if (token) await send("/v1/sessions:revoke", { method: "POST", body: { refresh_token: token } }).catch(() => {});
}

/** Words for an error, for a person: the server's message names the problem (and the field). */
export function describe(error) {
  if (error instanceof NetworkError) return "You seem to be offline. Check the connection and try again.";
  if (error instanceof ApiError && error.status === 429) {
    return `Slow down: ${error.message}`;
  }
  return error?.message || String(error);
}
