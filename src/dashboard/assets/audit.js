// The audit log (`admin`): `GET /api/audit`, newest first, filtered by actor and action.
// The log has no event of its own, so it is read when the view opens or the filter changes.

import { $, h, showError, fullTime } from './dom.js';
import * as api from './api.js';

const ui = { form: $('audit-filters'), body: $('audit'), error: $('audit-error') };

let active = false;

async function refresh() {
  const params = new URLSearchParams({ limit: '200' });
  for (const [k, v] of new FormData(ui.form)) {
    const text = String(v).trim();
    if (text) params.set(k, text);
  }
  try {
    const body = await api.get('/api/audit?' + params);
    if (!active) return;
    showError(ui.error, null);
    ui.body.replaceChildren(...(body.entries || []).map((e) => {
      const tr = h('tr');
      const result = h('td');
      result.append(h('span', 'pill ' + (e.ok ? 'delivered' : 'failed'), e.ok ? 'ok' : 'refused'));
      tr.append(
        h('td', 'dim', fullTime(e.at)),
        h('td', null, e.actor),
        h('td', 'mono', e.action),
        h('td', 'mono', e.target || ''),
        result,
        h('td', 'dim', e.detail || ''),
      );
      return tr;
    }));
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the audit log: ' + err.message);
  }
}

ui.form.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });

export const view = {
  enter() { active = true; refresh(); },
  leave() { active = false; },
};
