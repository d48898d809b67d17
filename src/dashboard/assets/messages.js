// The messages list: `GET /api/sms` filtered by state, device, API key (`api_key_id`, the
// keys of `GET /api/keys` for `keys:admin`), recipient and time, newest first, a page at a
// time; refetched when the event stream says a message moved. Each row links to the
// message's page (message.js).

import { $, h, setText, setAttr, setClass, show, showError, reconcile, clearList, debounce, num, clock, fullTime, stateClass } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';
import { can } from './session.js';

const PAGE = 50;

const ui = {
  form: $('message-filters'), body: $('messages'), empty: $('messages-empty'),
  count: $('messages-count'), error: $('messages-error'),
  newer: $('messages-newer'), older: $('messages-older'),
  keyFilter: $('message-key-filter'), key: $('message-key'),
};

let active = false;
let offset = 0;
let total = 0;
let unsubscribe = null;

function query() {
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  for (const [k, v] of new FormData(ui.form)) {
    const text = String(v).trim();
    if (!text) continue;
    // The form's times are local; the API takes RFC 3339.
    const at = k === 'since' || k === 'until' ? new Date(text) : null;
    params.set(k, at && !Number.isNaN(at.getTime()) ? at.toISOString() : text);
  }
  return params;
}

async function refresh() {
  if (!active) return;
  try {
    const data = await api.get('/api/sms?' + query());
    if (!active) return;
    showError(ui.error, null);
    const msgs = Array.isArray(data.messages) ? data.messages : [];
    total = data.total || 0;
    reconcile(ui.body, msgs, (m) => m.id, createRow, updateRow);
    show(ui.empty, msgs.length === 0);
    setText(ui.count, total
      ? (offset + 1) + '–' + (offset + msgs.length) + ' of ' + num(total)
      : '');
    ui.newer.disabled = offset === 0;
    ui.older.disabled = offset + msgs.length >= total;
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the messages: ' + err.message);
  }
}
const soon = debounce(refresh, 300);

function createRow() {
  const tr = h('tr');
  const r = (tr._r = {});
  r.time = h('td', 'dim');
  r.toCell = h('td', 'mono');
  r.to = h('a');
  r.toCell.append(r.to);
  r.stateCell = h('td');
  r.pill = h('span', 'pill');
  r.stateCell.append(r.pill);
  r.device = h('td');
  r.parts = h('td', 'num');
  r.err = h('td', 'err');
  tr.append(r.time, r.toCell, r.stateCell, r.device, r.parts, r.err);
  return tr;
}

function updateRow(tr, msg) {
  const r = tr._r;
  tr.dataset.id = msg.id;
  setText(r.time, clock(msg.created_at));
  setAttr(r.time, 'title', fullTime(msg.created_at));
  setText(r.to, msg.phone_number || '—');
  setAttr(r.to, 'href', '#/messages/' + encodeURIComponent(msg.id));
  setAttr(r.to, 'title', msg.message || null);
  const st = String(msg.state || 'unknown');
  setText(r.pill, st);
  setClass(r.pill, 'pill ' + stateClass(st));
  const at = msg.states && msg.states[st];
  setAttr(r.pill, 'title', at ? st + ' at ' + fullTime(at) : null);
  setText(r.device, msg.device_id ? devices.nameOf(msg.device_id) : '—');
  setClass(r.device, msg.device_id ? '' : 'dim');
  setAttr(r.device, 'title', msg.device_id
    ? (msg.sim_slot != null ? 'SIM ' + (msg.sim_slot + 1) + ' · ' : '') + msg.device_id : null);
  setText(r.parts, msg.parts != null ? msg.parts : '—');
  const e = msg.error;
  setText(r.err, e ? (e.code || 'error') + (e.temporary ? ' (temporary)' : '') : '');
  setAttr(r.err, 'title', e && e.message ? e.message : null);
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  offset = 0;
  refresh();
});
ui.form.addEventListener('change', (ev) => {
  if (ev.target.tagName === 'SELECT') { offset = 0; refresh(); }
});
ui.newer.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); refresh(); });
ui.older.addEventListener('click', () => { offset += PAGE; refresh(); });

onEvent((event) => {
  if (active && event.type.startsWith('message.')) soon();
});

/** The API keys to filter by (`keys:admin` lists them), keeping the choice. */
async function fillKeys() {
  show(ui.keyFilter, can('keys:admin'));
  if (!can('keys:admin')) return;
  try {
    const body = await api.get('/api/keys');
    const chosen = ui.key.value;
    const options = (body.keys || [])
      .slice()
      .sort((a, b) => String(a.name).localeCompare(String(b.name)))
      .map((k) => {
        const o = document.createElement('option');
        o.value = k.id;
        o.textContent = (k.name || k.prefix) + ' (' + k.prefix + (k.status && k.status !== 'active' ? ', ' + k.status : '') + ')';
        return o;
      });
    ui.key.replaceChildren(ui.key.options[0], ...options);
    ui.key.value = chosen;
    if (ui.key.value !== chosen) ui.key.value = '';
  } catch { /* the filter keeps what it had */ }
}

/** Forgets the rows (signing out). */
export function reset() {
  clearList(ui.body);
  offset = 0;
  ui.key.replaceChildren(ui.key.options[0]);
  ui.key.value = '';
}

export const view = {
  enter() {
    active = true;
    devices.fillSelects();
    unsubscribe = devices.subscribe(() => devices.fillSelects());
    fillKeys();
    refresh();
  },
  leave() {
    active = false;
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
  },
};
