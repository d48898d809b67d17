// One device's page (`#/fleet/{id}`): what the fleet knows of it (devices.js, kept live by
// the event stream), how much of each cap its SIMs used, its actions for `devices:write`
// (actions.js, as on its card: rest and unrest, limits, rotate its token, delete), its
// history over the last hour, six hours or day (history.js: online/offline, battery,
// signal, sent and failed; reread every 30 s), its recent messages and its failures by
// error code (`GET /api/sms` filtered by the device), refreshed when one of its messages
// moves.

import { $, h, setText, show, showError, debounce, fullTime, clock, stateClass } from './dom.js';
import * as api from './api.js';
import * as actions from './actions.js';
import * as devices from './devices.js';
import * as history from './history.js';
import { onEvent } from './stream.js';
import { can } from './session.js';

const ui = {
  title: $('device-title'), badge: $('device-online'), facts: $('device-facts'), error: $('device-error'),
  messages: $('device-messages'), failures: $('device-failures'), noFailures: $('device-no-failures'),
  actions: $('device-actions'), note: $('device-note'), quota: $('device-quota'), noQuota: $('device-no-quota'),
  window: $('device-history-window'), history: $('device-history'), historyError: $('device-history-error'),
};

const HISTORY_MS = 30000;

let id = null;
let unsubscribe = null;
let historyTimer = null;
let updateActions = null;

function fact(term, value) {
  return value == null || value === '' ? [] : [h('dt', null, term), h('dd', null, String(value))];
}

function renderDevice() {
  const d = devices.list().find((it) => it.id === id);
  if (!d) {
    if (devices.isLoaded()) showError(ui.error, 'No such device (deleted?).');
    return;
  }
  setText(ui.title, d.name || d.id);
  setText(ui.badge, d.online ? 'online' : 'offline');
  ui.badge.className = 'pill ' + (d.online ? 'delivered' : 'failed');
  const sims = (d.sims || []).map((s) => 'SIM ' + (s.slot + 1) + ': ' + [s.operator, s.phone_number, s.label,
    typeof s.signal_dbm === 'number' ? s.signal_dbm + ' dBm' : null].filter(Boolean).join(', ')).join('; ');
  ui.facts.replaceChildren(
    ...fact('Kind', d.kind),
    ...fact(d.online ? 'Online since' : 'Last seen', fullTime(d.online ? d.connected_at : d.last_seen_at)),
    ...fact('Battery', d.battery ? d.battery.level + '%' + (d.battery.charging ? ', charging' : '') : null),
    ...fact('SIMs', sims),
    ...fact('In flight', d.in_flight + (d.max_in_flight ? ' of ' + d.max_in_flight : '')),
    ...fact('Sent', d.sent_count + ' in all, ' + d.sent_24h + ' in the last 24 h'),
    ...fact('Failed', d.failed_count + ' in all, ' + d.failed_24h + ' in the last 24 h'),
    ...fact('Limits', actions.describeLimits(d.limits).replace(/^Limits: /, '')),
    ...fact('Rested until', d.rested_until ? fullTime(d.rested_until) + (d.rest_reason ? ': ' + d.rest_reason : '') : null),
    ...fact('Model', d.model),
    ...fact('App', d.app_version),
    ...fact('Registered', fullTime(d.created_at)),
    ...fact('Id', d.id),
  );
  ui.quota.replaceChildren(...actions.quotaLines(d, true));
  show(ui.noQuota, !d.online);
  const allowed = can('devices:write');
  show(ui.actions, allowed);
  if (allowed && !updateActions) {
    updateActions = actions.build(ui.actions, {
      device: () => ({ id }),
      note,
      deleted: () => { location.hash = '#/fleet'; },
    });
  }
  if (updateActions) updateActions(d);
}

function note(text) {
  setText(ui.note, text);
  show(ui.note, !!text);
}

/** Forgets the actions (signing out: the next user may not take them). */
export function reset() {
  ui.actions.replaceChildren();
  updateActions = null;
}

async function refreshHistory() {
  const wanted = id;
  if (!wanted) return;
  const window = new FormData(ui.window).get('window') || '6h';
  try {
    const body = await history.load(wanted, window);
    if (wanted !== id) return;
    showError(ui.historyError, null);
    history.section(ui.history, body);
  } catch (err) {
    if (wanted === id) showError(ui.historyError, 'Could not read its history: ' + err.message);
  }
}

ui.window.addEventListener('submit', (ev) => ev.preventDefault());
ui.window.addEventListener('change', refreshHistory);

async function refreshMessages() {
  const wanted = id;
  if (!wanted) return;
  const q = 'device_id=' + encodeURIComponent(wanted);
  try {
    const [recent, failed] = await Promise.all([
      api.get('/api/sms?limit=20&' + q),
      api.get('/api/sms?limit=200&state=failed&' + q),
    ]);
    if (wanted !== id) return;
    ui.messages.replaceChildren(...(recent.messages || []).map((m) => {
      const li = h('li');
      li.dataset.id = m.id;
      const a = h('a', 'mono', m.phone_number);
      a.href = '#/messages/' + encodeURIComponent(m.id);
      li.append(h('span', 'dim', clock(m.created_at) + ' '), a, document.createTextNode(' '), h('span', 'pill ' + stateClass(m.state), m.state));
      return li;
    }));
    const codes = new Map();
    for (const m of failed.messages || []) {
      const code = (m.error && m.error.code) || 'unknown';
      codes.set(code, (codes.get(code) || 0) + 1);
    }
    ui.failures.replaceChildren(...[...codes].sort((a, b) => b[1] - a[1])
      .map(([code, n]) => h('li', null, code + ': ' + n)));
    show(ui.noFailures, codes.size === 0);
  } catch (err) {
    if (wanted === id) showError(ui.error, 'Could not read its messages: ' + err.message);
  }
}
const soon = debounce(refreshMessages, 400);

onEvent((event) => {
  if (id && event.device_id === id && event.type.startsWith('message.')) soon();
});

export const view = {
  enter(arg) {
    id = arg;
    showError(ui.error, null);
    setText(ui.title, 'Device');
    setText(ui.badge, '');
    ui.facts.replaceChildren();
    ui.messages.replaceChildren();
    ui.failures.replaceChildren();
    note(null);
    for (const it of ui.actions.querySelectorAll('details')) it.open = false;
    ui.quota.replaceChildren();
    ui.history.replaceChildren();
    showError(ui.historyError, null);
    unsubscribe = devices.subscribe(renderDevice);
    renderDevice();
    refreshMessages();
    refreshHistory();
    historyTimer = setInterval(refreshHistory, HISTORY_MS);
  },
  leave() {
    id = null;
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
    clearInterval(historyTimer);
    historyTimer = null;
  },
};
