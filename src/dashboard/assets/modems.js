// Modems (USB/serial GSM modems and HiLink sticks): each one's state, SIM and network
// (`GET /api/modems/status`, reread on `modem.*` and `device.*` events), the messages stored
// on it (`GET /api/modems/{id}/sms`), and for `modems:write` its balance and a USSD console
// (`GET /api/modems/{id}/balance`, `POST /api/modems/{id}/ussd`).

import { $, h, show, showError, debounce, fullTime } from './dom.js';
import * as api from './api.js';
import { onEvent } from './stream.js';
import { can } from './session.js';

const ui = { box: $('modems'), empty: $('modems-empty'), error: $('modems-error') };

let active = false;
const enc = encodeURIComponent;

function fact(dl, term, value) {
  if (value == null || value === '') return;
  dl.append(h('dt', null, term), h('dd', null, String(value)));
}

function card(m) {
  const id = m.device_id || m.port;
  const article = h('article', 'card modem-card');
  article.dataset.id = id;
  const head = h('div', 'view-head');
  head.append(h('h2', 'card-name', [m.manufacturer, m.model].filter(Boolean).join(' ') || m.port),
    h('span', 'pill ' + (m.state === 'ready' ? 'delivered' : m.state === 'error' ? 'failed' : 'queued'), m.state));
  const dl = h('dl', 'facts');
  fact(dl, 'Port', m.port + (m.transport ? ' (' + m.transport + ')' : ''));
  fact(dl, 'Operator', m.sim && m.sim.operator);
  fact(dl, 'Number', m.sim && m.sim.phone_number);
  fact(dl, 'SIM', m.sim && [m.sim.iccid, m.sim.pin_state].filter(Boolean).join(', '));
  const net = m.network || {};
  fact(dl, 'Network', [net.operator, net.network_type, net.registered ? 'registered' : 'not registered',
    net.roaming ? 'roaming' : null, typeof net.signal_dbm === 'number' ? net.signal_dbm + ' dBm' : null].filter(Boolean).join(', '));
  fact(dl, 'IMEI', m.imei);
  fact(dl, 'Connected', m.connected_at ? fullTime(m.connected_at) : null);
  fact(dl, 'This run', m.sent + ' sent, ' + m.failed + ' failed, ' + m.received + ' received');
  fact(dl, 'Last error', m.last_error);
  article.append(head, dl);
  if (!m.device_id) return article;

  const out = h('pre', 'modem-out');
  out.setAttribute('role', 'status');
  out.hidden = true;
  const say = (text) => { out.textContent = text; out.hidden = false; };
  const actions = h('div', 'actions');
  const stored = h('button', 'btn btn-ghost', 'Stored messages');
  stored.type = 'button';
  stored.addEventListener('click', async () => {
    try {
      const body = await api.get('/api/modems/' + enc(id) + '/sms');
      const list = body.messages || [];
      say(list.length ? list.map((s) => [s.index, s.sender || s.from, s.text || s.message].filter((v) => v != null).join('  ')).join('\n') : 'No messages stored on the modem.');
    } catch (err) { say(err.message); }
  });
  actions.append(stored);
  if (can('modems:write')) {
    const balance = h('button', 'btn btn-ghost', 'Balance');
    balance.type = 'button';
    balance.addEventListener('click', async () => {
      say('Asking the network…');
      try {
        const b = await api.get('/api/modems/' + enc(id) + '/balance');
        say((b.amount != null ? 'Balance ' + b.amount + (b.currency ? ' ' + b.currency : '') + '\n' : '') + (b.text || ''));
      } catch (err) { say(err.message); }
    });
    actions.append(balance);
    const form = h('form', 'ussd');
    const label = h('label', null, 'USSD code ');
    const input = document.createElement('input');
    input.type = 'text';
    input.name = 'code';
    input.placeholder = '*100#';
    input.autocomplete = 'off';
    label.append(input);
    const send = h('button', 'btn btn-primary', 'Send USSD');
    send.type = 'submit';
    form.append(label, send);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      say('Asking the network…');
      try {
        const answer = await api.post('/api/modems/' + enc(id) + '/ussd', { code: input.value.trim() });
        say(answer.text || JSON.stringify(answer));
      } catch (err) { say(err.message); }
    });
    actions.append(form);
  }
  article.append(actions, out);
  return article;
}

async function refresh() {
  if (!active) return;
  try {
    const body = await api.get('/api/modems/status');
    if (!active) return;
    showError(ui.error, null);
    const modems = body.modems || [];
    // Redraw only what changed: a card being used (a USSD answer on screen) stays.
    const sig = JSON.stringify(modems);
    if (ui.box.dataset.sig !== sig) {
      ui.box.dataset.sig = sig;
      ui.box.replaceChildren(...modems.map(card));
    }
    show(ui.empty, modems.length === 0);
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the modems: ' + err.message);
  }
}
const soon = debounce(refresh, 500);

onEvent((event) => {
  if (active && (event.type.startsWith('modem.') || event.type.startsWith('device.'))) soon();
});

export const view = {
  enter() { active = true; delete ui.box.dataset.sig; refresh(); },
  leave() { active = false; },
};
