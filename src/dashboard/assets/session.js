// Who is using the console: the principal `GET /api/auth/me` describes (a user's login
// session or an API key), its role and scopes. Views ask `can(scope)` before they offer an
// action; the hub checks again on every request, so this only hides what would be refused.

import { get } from './api.js';

let me = null;

/** Asks the hub who this credential is; ApiError 401 when it is no one. */
export async function load() {
  const body = await get('/api/auth/me');
  const scopes = new Set(body.scopes || []);
  me = {
    label: body.label || '',
    via: body.via,
    scopes,
    name: String(body.label || '').replace(/^user:/, ''),
    role: roleOf(body.via, scopes),
  };
  return me;
}

export function whoami() { return me; }

export function clear() { me = null; }

/** Whether the credential has `scope` (`admin` has every scope). */
export function can(scope) {
  return !!me && (me.scopes.has(scope) || me.scopes.has('admin'));
}

// A user's role is the set of scopes it grants (`auth::users::Role::scopes`); a key has
// scopes, not a role.
function roleOf(via, scopes) {
  if (via === 'api_key') return 'API key';
  if (scopes.has('admin')) return 'admin';
  if (scopes.has('devices:write') || scopes.has('messages:send')) return 'operator';
  return 'viewer';
}
