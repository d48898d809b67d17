// Modems (USB/serial GSM modems and HiLink sticks): each one's state, SIM and network
// (`GET /api/modems/status`, reread on `modem.*` and `device.*` events), the messages stored
// on it (`GET /api/modems/{id}/sms`, each with Delete for `modems:write`:
// `DELETE /api/modems/{id}/sms/{index}`), and for `modems:write` its balance, data balance,
// a recharge with a voucher and a USSD console (`GET /api/modems/{id}/balance`,
// `GET …/data-balance`, `POST …/recharge`, `POST …/ussd`). A card is kept while its modem
// is listed (only its facts are redrawn), so an answer on screen stays.

import { $, h, setText, show, showError, reconcile, clearList, confirmButton, debounce, fullTime } from './dom.js';
import * as api from './api.js';
import { onEvent } from './stream.js';
import { can } from './session.js';

const ui = { box: $('modems'), empty: $('modems-empty'), error: $('modems-error') };

let active = false;
const enc = encodeURIComponent;
const idOf = (m) => m.device_id || m.port;

function fact(dl, term, value) {
  if (value == null || value === '') return;
  dl.append(h('dt', null, term), h('dd', null, String(value)));
}

function button(label, cls = 'btn btn-ghost') {
  const b = h('button', cls, label);
  b.type = 'button';
  return b;
}

/** A small form: one labelled text input and a submit button. */
function oneField(cls, label, name, placeholder, submit) {
  const form = h('form', cls);
  const l = h('label', null, label + ' ');
  const input = document.createElement('input');
  Object.assign(input, { type: 'text', name, placeholder, autocomplete: 'off' });
  l.append(input);
  const send = h('button', 'btn btn-primary', submit);
  send.type = 'submit';
  form.append(l, send);
  return [form, input];
}

function createCard(m) {
  const id = idOf(m);
  const article = h('article', 'card modem-card');
  article.dataset.id = id;
  const r = (article._r = {});
  const head = h('div', 'view-head');
  r.name = h('h2', 'card-name');
  r.pill = h('span', 'pill');
  head.append(r.name, r.pill);
  r.facts = h('dl', 'facts');
  article.append(head, r.facts);
  r.tools = h('div');
  article.append(r.tools);
  return article;
}

/** The actions of a modem that has a device id (it was identified). */
function tools(article, id) {
  const out = h('pre', 'modem-out');
  out.setAttribute('role', 'status');
  out.hidden = true;
  const say = (text) => { out.textContent = text; out.hidden = false; };
  const storedList = h('ul', 'modem-stored');
  storedList.setAttribute('aria-label', 'Messages stored on the modem');
  storedList.hidden = true;
  const actions = h('div', 'actions');

  const listStored = async () => {
    try {
      const body = await api.get('/api/modems/' + enc(id) + '/sms');
      const list = body.messages || [];
      storedList.replaceChildren(...list.map((s) => {
        const li = h('li');
        li.dataset.index = String(s.index);
        li.append(h('span', 'mono dim', '#' + s.index), h('span', 'mono', s.number || '—'),
          h('span', 'stored-text', s.text != null ? s.text : '(' + s.kind + ')'),
          h('span', 'muted small', [s.status, s.part ? 'part ' + s.part : null, s.timestamp].filter(Boolean).join(' · ')));
        if (can('modems:write')) {
          const del = confirmButton('Delete', 'Really delete?', async () => {
            try {
              await api.del('/api/modems/' + enc(id) + '/sms/' + enc(s.index));
              say('Deleted message #' + s.index + ' from the modem.');
              await listStored();
            } catch (err) { say(err.message); }
          });
          del.setAttribute('aria-label', 'Delete stored message ' + s.index);
          li.append(del);
        }
        return li;
      }));
      storedList.hidden = list.length === 0;
      say(list.length ? list.length + ' message' + (list.length === 1 ? '' : 's') + ' stored on the modem.' : 'No messages stored on the modem.');
    } catch (err) { say(err.message); }
  };
  const stored = button('Stored messages');
  stored.addEventListener('click', listStored);
  actions.append(stored);

  if (can('modems:write')) {
    const ask = (label, path) => {
      const b = button(label);
      b.addEventListener('click', async () => {
        say('Asking the network…');
        try {
          const a = await api.get('/api/modems/' + enc(id) + path);
          say((a.amount != null ? label + ' ' + a.amount + (a.currency ? ' ' + a.currency : '') + '\n' : '') + (a.text || ''));
        } catch (err) { say(err.message); }
      });
      return b;
    };
    actions.append(ask('Balance', '/balance'), ask('Data balance', '/data-balance'));

    const [recharge, voucher] = oneField('recharge', 'Voucher', 'voucher', '12345678901234', 'Recharge');
    recharge.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      say('Asking the network…');
      try {
        const answer = await api.post('/api/modems/' + enc(id) + '/recharge', { code: voucher.value.trim() });
        voucher.value = '';
        say(answer.text || JSON.stringify(answer));
      } catch (err) { say(err.message); }
    });

    const [ussd, code] = oneField('ussd', 'USSD code', 'code', '*100#', 'Send USSD');
    ussd.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      say('Asking the network…');
      try {
        const answer = await api.post('/api/modems/' + enc(id) + '/ussd', { code: code.value.trim() });
        say(answer.text || JSON.stringify(answer));
      } catch (err) { say(err.message); }
    });
    actions.append(recharge, ussd);
  }
  return [actions, out, storedList];
}

function updateCard(article, m) {
  const r = article._r;
  setText(r.name, [m.manufacturer, m.model].filter(Boolean).join(' ') || m.port);
  setText(r.pill, m.state);
  r.pill.className = 'pill ' + (m.state === 'ready' ? 'delivered' : m.state === 'error' ? 'failed' : 'queued');
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
  r.facts.replaceChildren(...dl.childNodes);
  // The tools come once the modem is identified, and stay.
  const want = m.device_id ? (can('modems:write') ? 'write' : 'read') : 'none';
  if (r.toolsFor !== want) {
    r.toolsFor = want;
    r.tools.replaceChildren(...(m.device_id ? tools(article, m.device_id) : []));
  }
}

async function refresh() {
  if (!active) return;
  try {
    const body = await api.get('/api/modems/status');
    if (!active) return;
    showError(ui.error, null);
    const modems = body.modems || [];
    reconcile(ui.box, modems, idOf, createCard, updateCard);
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
  enter() { active = true; clearList(ui.box); refresh(); },
  leave() { active = false; },
};
