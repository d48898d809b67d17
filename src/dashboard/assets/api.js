// The console's one way to the hub's REST API: the same routes clients use, with the
// credential of this browser — a login session (its HttpOnly cookie, plus the CSRF token
// given at login on every unsafe request) or an API key (the demo's link).
// Must never: keep a password, or send the API key anywhere but this hub's API.

const KEY_STORE = 'smshub.apiKey';
const CSRF_STORE = 'smshub.csrf';
const TIMEOUT_MS = 10000;

/** A refused request: the HTTP status and the API's stable error code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code;
  }
}

// `{ kind: 'key', key }`, `{ kind: 'session', csrf }` or null.
let credential = null;
let lost = () => {};
// Requests under way, so that signing out ends the session after them, not under them.
const inflight = new Set();

/** The credential remembered by this browser, if any. */
export function restore() {
  const key = localStorage.getItem(KEY_STORE);
  const csrf = localStorage.getItem(CSRF_STORE);
  if (key) credential = { kind: 'key', key };
  else if (csrf) credential = { kind: 'session', csrf };
  else credential = null;
  return credential;
}

export function useKey(key) {
  localStorage.removeItem(CSRF_STORE);
  localStorage.setItem(KEY_STORE, key);
  credential = { kind: 'key', key };
}

export function current() { return credential; }

/** Called when the hub answers 401: the key or the session is no longer good. */
export function onCredentialLost(fn) { lost = fn; }

function forget() {
  localStorage.removeItem(KEY_STORE);
  localStorage.removeItem(CSRF_STORE);
  credential = null;
}

/** The headers that carry the credential (the cookie goes by itself). */
export function authHeaders(method = 'GET') {
  if (!credential) return {};
  if (credential.kind === 'key') return { 'X-API-Key': credential.key };
  return method === 'GET' ? {} : { 'X-CSRF-Token': credential.csrf };
}

/** `method path` with a JSON body; the parsed answer (null for 204); ApiError otherwise. */
export function request(method, path, body) {
  const call = send(method, path, body);
  inflight.add(call);
  const done = () => inflight.delete(call);
  call.then(done, done);
  return call;
}

async function send(method, path, body) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  const headers = { Accept: 'application/json', ...authHeaders(method) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: ctrl.signal,
    });
  } catch (err) {
    throw new ApiError(0, 'unreachable', ctrl.signal.aborted ? 'The hub did not answer in time.' : 'The hub cannot be reached.');
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(res.status, e.code, e.message);
    if (res.status === 401 && path !== '/api/auth/login') lost(error);
    throw error;
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const put = (path, body) => request('PUT', path, body);
export const patch = (path, body) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

/** Signs in as a user: the hub sets the session cookie and gives the CSRF token. */
export async function login(username, password) {
  const body = await request('POST', '/api/auth/login', { username, password });
  localStorage.removeItem(KEY_STORE);
  localStorage.setItem(CSRF_STORE, body.csrf_token || '');
  credential = { kind: 'session', csrf: body.csrf_token || '' };
  return body;
}

/** Ends the session (or forgets the key). */
export async function logout() {
  if (credential && credential.kind === 'session') {
    await Promise.allSettled([...inflight]);
    try { await request('POST', '/api/auth/logout', {}); } catch { /* the session may be gone already */ }
  }
  forget();
}

/** Forgets a credential the hub refused. */
export function drop() { forget(); }
