// People (`admin`): the users with their role, last sign-in and lockout (`GET /api/users`), a
// form that adds one (`POST /api/users`), and per user a role picker, a password reset
// (`PATCH /api/users/{username}`) and Delete (`DELETE /api/users/{username}`). The hub keeps
// one admin at least (`409 last_admin`); its answer is shown in the row. No event carries
// users, so the list is read when the view opens and after each change.

import { $, h, setText, showError, reconcile, confirmButton, ago, fullTime } from './dom.js';
import * as api from './api.js';
import { whoami } from './session.js';

const ROLES = ['admin', 'operator', 'viewer'];

const ui = {
  form: $('user-create'), error: $('user-create-error'),
  body: $('users'), listError: $('users-error'),
};

let active = false;

async function refresh() {
  if (!active) return;
  try {
    const body = await api.get('/api/users');
    if (!active) return;
    showError(ui.listError, null);
    reconcile(ui.body, body.users || [], (u) => u.username, createRow, updateRow);
  } catch (err) {
    if (active) showError(ui.listError, 'Could not read the users: ' + err.message);
  }
}

function message(err) {
  return err.code ? err.code + ': ' + err.message : err.message;
}

function createRow(user) {
  const tr = h('tr');
  const r = (tr._r = {});
  const path = '/api/users/' + encodeURIComponent(user.username);
  r.name = h('td', 'mono');
  r.roleCell = h('td');
  r.role = h('select', 'user-role');
  r.role.setAttribute('aria-label', 'Role of ' + user.username);
  for (const role of ROLES) r.role.append(new Option(role, role));
  r.role.addEventListener('change', async () => {
    const wanted = r.role.value;
    r.role.disabled = true;
    try {
      await api.patch(path, { role: wanted });
      note(tr, 'Role changed to ' + wanted);
      refresh();
    } catch (err) {
      r.role.value = tr.dataset.role;
      note(tr, message(err));
    } finally { r.role.disabled = false; }
  });
  r.roleCell.append(r.role);
  r.login = h('td', 'dim');
  r.locked = h('td', 'dim');
  r.created = h('td', 'dim');
  r.actions = h('td', 'user-actions');
  const reset = h('form', 'user-password');
  const password = h('input');
  Object.assign(password, { type: 'password', name: 'password', minLength: 8, required: true, autocomplete: 'new-password', placeholder: 'new password' });
  password.setAttribute('aria-label', 'New password for ' + user.username);
  const set = h('button', 'btn btn-ghost', 'Reset password');
  set.type = 'submit';
  reset.append(password, set);
  reset.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    set.disabled = true;
    try {
      await api.patch(path, { password: password.value });
      password.value = '';
      note(tr, 'Password reset; their sessions ended');
    } catch (err) { note(tr, message(err)); } finally { set.disabled = false; }
  });
  const remove = confirmButton('Delete', 'Really delete?', async () => {
    try {
      await api.del(path);
      refresh();
    } catch (err) { note(tr, message(err)); }
  });
  remove.setAttribute('aria-label', 'Delete ' + user.username);
  r.note = h('p', 'user-note small', '');
  r.note.setAttribute('role', 'status');
  r.actions.append(reset, remove, r.note);
  tr.append(r.name, r.roleCell, r.login, r.locked, r.created, r.actions);
  return tr;
}

function note(tr, text) { setText(tr._r.note, text); }

function updateRow(tr, user) {
  const r = tr._r;
  tr.dataset.username = user.username;
  tr.dataset.role = user.role;
  const me = whoami();
  setText(r.name, user.username + (me && me.name === user.username ? ' (you)' : ''));
  if (document.activeElement !== r.role) r.role.value = user.role;
  setText(r.login, user.last_login_at ? ago(user.last_login_at) : 'never');
  r.login.title = user.last_login_at ? fullTime(user.last_login_at) : '';
  setText(r.locked, user.locked_until ? 'until ' + fullTime(user.locked_until) : '—');
  setText(r.created, fullTime(user.created_at));
}

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.error, null);
  const form = new FormData(ui.form);
  const body = {
    username: String(form.get('username') || '').trim(),
    password: String(form.get('password') || ''),
    role: String(form.get('role') || 'viewer'),
  };
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await api.post('/api/users', body);
    ui.form.reset();
    refresh();
  } catch (err) {
    showError(ui.error, message(err));
  } finally {
    button.disabled = false;
  }
});

export const view = {
  enter() {
    active = true;
    refresh();
  },
  leave() {
    active = false;
  },
};
