// Webhooks (`webhooks:write`): the list with each endpoint's state (`GET /api/webhooks`),
// a form that creates one (the signing secret is shown once), enable and delete; a
// webhook's page (`#/webhooks/{id}`) lists its deliveries, retries one, and replays every
// event after an id (deliveries are reread every few seconds there: they have no event).

import { $, h, setText, show, showError, confirmButton, fullTime } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';

const ui = {
  form: $('webhook-create'), error: $('webhook-create-error'), secret: $('webhook-secret'),
  secretValue: $('webhook-secret-value'), body: $('webhooks'), listError: $('webhooks-error'),
  title: $('webhook-title'), facts: $('webhook-facts'), deliveries: $('deliveries'),
  deliveriesError: $('deliveries-error'), replay: $('webhook-replay'), replayResult: $('webhook-replay-result'),
  refresh: $('deliveries-refresh'),
};

const enc = encodeURIComponent;
let listActive = false;
let hookId = null;
let timer = null;
// Deliveries have no event of their own: the page rereads them this often while it is open.
const DELIVERIES_MS = 3000;

async function refreshList() {
  try {
    const body = await api.get('/api/webhooks');
    if (!listActive) return;
    showError(ui.listError, null);
    ui.body.replaceChildren(...(body.webhooks || []).map((w) => {
      const tr = h('tr');
      tr.dataset.id = w.id;
      const link = h('a', 'mono', w.url);
      link.href = '#/webhooks/' + enc(w.id);
      const urlCell = h('td', 'text-cell');
      urlCell.append(link);
      const state = h('td');
      state.append(h('span', 'pill ' + (w.enabled ? 'delivered' : 'failed'), w.enabled ? 'enabled' : 'disabled'));
      if (w.disabled_reason) state.append(h('span', 'small muted', ' ' + w.disabled_reason));
      if (w.failing_since) state.append(h('span', 'small muted', ' failing since ' + fullTime(w.failing_since)));
      const actions = h('td', 'row-actions');
      if (!w.enabled) {
        const enable = h('button', 'btn btn-ghost', 'Enable');
        enable.type = 'button';
        enable.addEventListener('click', () => act(() => api.post('/api/webhooks/' + enc(w.id) + '/enable')));
        actions.append(enable);
      }
      const remove = confirmButton('Delete', 'Really delete?', () => act(() => api.del('/api/webhooks/' + enc(w.id))));
      remove.setAttribute('aria-label', 'Delete the webhook to ' + w.url);
      actions.append(remove);
      tr.append(urlCell, h('td', 'scopes-cell', (w.types || []).join(' ') || 'every event'),
        h('td', null, w.device_id ? devices.nameOf(w.device_id) : 'any'), state,
        h('td', 'dim', fullTime(w.created_at)), actions);
      return tr;
    }));
  } catch (err) {
    if (listActive) showError(ui.listError, 'Could not read the webhooks: ' + err.message);
  }
}

async function act(call) {
  try { await call(); } catch (err) { showError(ui.listError, err.message); }
  refreshList();
}

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.error, null);
  show(ui.secret, false);
  const form = new FormData(ui.form);
  const body = { url: String(form.get('url') || '').trim() };
  const types = String(form.get('types') || '').trim();
  if (types) body.types = types;
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const created = await api.post('/api/webhooks', body);
    setText(ui.secretValue, created.secret || '');
    show(ui.secret, !!created.secret);
    ui.form.reset();
    refreshList();
  } catch (err) {
    showError(ui.error, err.code ? err.code + ': ' + err.message : err.message);
  } finally {
    button.disabled = false;
  }
});

// ---------- one webhook's deliveries ----------
async function refreshHook() {
  const id = hookId;
  if (!id) return;
  try {
    const [hook, log] = await Promise.all([
      api.get('/api/webhooks/' + enc(id)),
      api.get('/api/webhooks/' + enc(id) + '/deliveries?limit=100'),
    ]);
    if (id !== hookId) return;
    showError(ui.deliveriesError, null);
    setText(ui.title, 'Webhook to ' + hook.url);
    ui.facts.replaceChildren(
      h('dt', null, 'Events'), h('dd', null, (hook.types || []).join(' ') || 'every event'),
      h('dt', null, 'State'), h('dd', null, hook.enabled ? 'enabled' : 'disabled' + (hook.disabled_reason ? ': ' + hook.disabled_reason : '')),
      h('dt', null, 'Last event sent'), h('dd', null, String(hook.last_event_id ?? '—')),
    );
    ui.deliveries.replaceChildren(...(log.deliveries || []).map((d) => {
      const tr = h('tr');
      tr.dataset.id = d.id;
      tr.dataset.event = d.event_type;
      const status = h('td');
      status.append(h('span', 'pill ' + (d.status === 'delivered' ? 'delivered' : d.status === 'failed' ? 'failed' : 'queued'), d.status));
      const actions = h('td');
      if (d.status !== 'delivered') {
        const retry = h('button', 'btn btn-ghost', 'Retry');
        retry.type = 'button';
        retry.addEventListener('click', async () => {
          try { await api.post('/api/webhooks/' + enc(id) + '/deliveries/' + enc(d.id) + '/retry'); } catch (err) { showError(ui.deliveriesError, err.message); }
          refreshHook();
        });
        actions.append(retry);
      }
      tr.append(h('td', 'dim', fullTime(d.created_at)), h('td', 'mono', d.event_type), status,
        h('td', 'num', String(d.attempts)), h('td', 'num', d.response_code == null ? '—' : String(d.response_code)),
        h('td', 'num', d.latency_ms == null ? '—' : d.latency_ms + ' ms'), h('td', 'err', d.error || ''), actions);
      return tr;
    }));
  } catch (err) {
    if (id === hookId) showError(ui.deliveriesError, err.status === 404 ? 'No such webhook.' : 'Could not read the deliveries: ' + err.message);
  }
}

ui.refresh.addEventListener('click', refreshHook);

ui.replay.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  show(ui.replayResult, false);
  const after = String(new FormData(ui.replay).get('after') || '0').trim();
  try {
    const answer = await api.post('/api/webhooks/' + enc(hookId) + '/replay?after=' + enc(after));
    setText(ui.replayResult, 'Replaying ' + answer.replayed + ' events (through event ' + answer.through + ').');
    show(ui.replayResult, true);
    refreshHook();
  } catch (err) {
    showError(ui.deliveriesError, err.message);
  }
});

export const view = {
  enter() { listActive = true; refreshList(); },
  leave() { listActive = false; show(ui.secret, false); setText(ui.secretValue, ''); },
};

export const detail = {
  enter(id) {
    hookId = id;
    setText(ui.title, 'Webhook');
    ui.facts.replaceChildren();
    ui.deliveries.replaceChildren();
    show(ui.replayResult, false);
    refreshHook();
    timer = setInterval(refreshHook, DELIVERIES_MS);
  },
  leave() { hookId = null; clearInterval(timer); },
};
