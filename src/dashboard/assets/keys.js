// API keys (`keys:admin`): the list with status and last use (`GET /api/keys`), a form that
// creates one with its scopes (the secret is shown once), and Revoke (`DELETE
// /api/keys/{id}`). Refetched on `key.*` events.

import { $, h, setText, show, showError, reconcile, confirmButton, debounce, ago, fullTime } from './dom.js';
import * as api from './api.js';
import { onEvent } from './stream.js';

// `auth::Scope::ALL`, in its order, with what each allows.
const SCOPES = [
  ['messages:send', 'send and cancel messages'],
  ['messages:read', 'read its own messages'],
  ['messages:read_all', "read everyone's messages"],
  ['inbox:read', 'read received SMS'],
  ['devices:read', 'list devices and statistics'],
  ['devices:write', 'add, pair, limit and delete devices'],
  ['modems:write', 'drive modems'],
  ['keys:admin', 'manage API keys'],
  ['webhooks:write', 'manage webhooks'],
  ['admin', 'everything'],
];
const DEFAULT = new Set(['messages:send', 'messages:read']);

const ui = {
  form: $('key-create'), scopes: $('key-scopes'), error: $('key-create-error'),
  secret: $('key-secret'), secretValue: $('key-secret-value'),
  body: $('keys'), listError: $('keys-error'),
};

for (const [scope, what] of SCOPES) {
  const label = h('label', 'check');
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.name = 'scope';
  box.value = scope;
  box.defaultChecked = DEFAULT.has(scope); // what the form resets to after a creation
  label.append(box, h('code', null, scope), document.createTextNode(' ' + what));
  ui.scopes.append(label);
}

let active = false;

async function refresh() {
  if (!active) return;
  try {
    const body = await api.get('/api/keys');
    if (!active) return;
    showError(ui.listError, null);
    const keys = (body.keys || []).slice().sort((a, b) =>
      (a.status === 'active' ? 0 : 1) - (b.status === 'active' ? 0 : 1) ||
      String(b.created_at).localeCompare(String(a.created_at)));
    reconcile(ui.body, keys, (k) => k.id, createRow, updateRow);
  } catch (err) {
    if (active) showError(ui.listError, 'Could not read the keys: ' + err.message);
  }
}
const soon = debounce(refresh, 200);

function createRow() {
  const tr = h('tr');
  const r = (tr._r = {});
  r.name = h('td');
  r.prefix = h('td', 'mono');
  r.scopes = h('td', 'scopes-cell');
  r.status = h('td');
  r.pill = h('span', 'pill');
  r.status.append(r.pill);
  r.used = h('td', 'dim');
  r.created = h('td', 'dim');
  r.actions = h('td');
  tr.append(r.name, r.prefix, r.scopes, r.status, r.used, r.created, r.actions);
  return tr;
}

function updateRow(tr, key) {
  const r = tr._r;
  tr.dataset.id = key.id;
  tr.dataset.name = key.name;
  setText(r.name, key.name);
  setText(r.prefix, key.prefix);
  setText(r.scopes, (key.scopes || []).join(' '));
  setText(r.pill, key.status);
  r.pill.className = 'pill ' + (key.status === 'active' ? 'delivered' : key.status === 'revoked' ? 'failed' : 'expired');
  setText(r.used, key.last_used_at ? ago(key.last_used_at) : 'never');
  r.used.title = key.last_used_at ? fullTime(key.last_used_at) : '';
  setText(r.created, fullTime(key.created_at) + (key.created_by ? ' by ' + key.created_by : ''));
  const want = key.status === 'revoked' ? 'none' : 'revoke';
  if (r.actionsFor !== want) {
    r.actionsFor = want;
    r.actions.replaceChildren();
    if (want === 'revoke') {
      const b = confirmButton('Revoke', 'Really revoke?', async () => {
        try {
          await api.del('/api/keys/' + encodeURIComponent(key.id));
          refresh();
        } catch (err) { showError(ui.listError, err.message); }
      });
      b.setAttribute('aria-label', 'Revoke ' + key.name);
      r.actions.append(b);
    }
  }
}

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.error, null);
  show(ui.secret, false);
  const form = new FormData(ui.form);
  const body = { name: String(form.get('name') || '').trim(), scopes: form.getAll('scope').map(String) };
  const expires = String(form.get('expires_at') || '').trim();
  if (expires) body.expires_at = expires;
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const created = await api.post('/api/keys', body);
    setText(ui.secretValue, created.key);
    show(ui.secret, true);
    ui.form.reset();
    refresh();
  } catch (err) {
    showError(ui.error, err.code ? err.code + ': ' + err.message : err.message);
  } finally {
    button.disabled = false;
  }
});

onEvent((event) => {
  if (active && event.type.startsWith('key.')) soon();
});

export const view = {
  enter() {
    active = true;
    refresh();
  },
  leave() {
    active = false;
    show(ui.secret, false);
    setText(ui.secretValue, '');
  },
};
