// The inbox (`inbox:read`): received SMS, `GET /api/sms/inbox`, newest first, filtered by
// device and sender and searched (`q`: a part of the sender or the text); refreshed when
// the event stream says one arrived (`sms.received`).

import { $, h, setText, show, showError, debounce, num, fullTime } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';

const ui = { form: $('inbox-filters'), body: $('inbox'), empty: $('inbox-empty'), count: $('inbox-count'), error: $('inbox-error') };

let active = false;
let unsubscribe = null;

async function refresh() {
  if (!active) return;
  const params = new URLSearchParams({ limit: '100' });
  for (const [k, v] of new FormData(ui.form)) {
    const text = String(v).trim();
    if (text) params.set(k, text);
  }
  try {
    const data = await api.get('/api/sms/inbox?' + params);
    if (!active) return;
    showError(ui.error, null);
    const msgs = Array.isArray(data.messages) ? data.messages : [];
    ui.body.replaceChildren(...msgs.map((m) => {
      const tr = h('tr');
      tr.dataset.id = m.id;
      const time = h('td', 'dim', fullTime(m.received_at));
      tr.append(
        time,
        h('td', 'mono', m.sender),
        h('td', 'text-cell', m.message),
        h('td', null, devices.nameOf(m.device_id) + (m.sim_slot != null ? ', SIM ' + (m.sim_slot + 1) : '')),
      );
      return tr;
    }));
    show(ui.empty, msgs.length === 0);
    setText(ui.count, data.total ? num(data.total) + ' received' : '');
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the inbox: ' + err.message);
  }
}
const soon = debounce(refresh, 300);

ui.form.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
ui.form.addEventListener('change', (ev) => { if (ev.target.tagName === 'SELECT') refresh(); });

onEvent((event) => {
  if (active && event.type === 'sms.received') soon();
});

export const view = {
  enter() {
    active = true;
    devices.fillSelects();
    unsubscribe = devices.subscribe(() => devices.fillSelects());
    refresh();
  },
  leave() {
    active = false;
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
  },
};
