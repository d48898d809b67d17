// The Send form: one or more recipients and a text, posted to `POST /api/send-sms` as any
// client would (one message per recipient); the accepted messages link to their pages.
// (Sends from CSV with a template are bulk.js, on the same view.)

import { $, h, setText, show, showError } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';

const ui = {
  form: $('send-form'), to: $('send-to'), text: $('send-text'), count: $('send-count'),
  error: $('send-error'), result: $('send-result'),
};

let unsubscribe = null;

ui.text.addEventListener('input', () => {
  const n = [...ui.text.value].length;
  setText(ui.count, n ? n + ' characters' : '');
});

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.error, null);
  show(ui.result, false);
  const form = new FormData(ui.form);
  const recipients = String(form.get('to') || '').split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  if (!recipients.length) { showError(ui.error, 'Give at least one recipient.'); return; }
  const body = { message: String(form.get('text') || ''), delivery_report: form.get('report') === 'on' };
  if (recipients.length === 1) body.phone_number = recipients[0];
  else body.phone_numbers = recipients;
  const device = String(form.get('device_id') || '');
  if (device) body.device_id = device;
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const answer = await api.post('/api/send-sms', body);
    const accepted = Array.isArray(answer.messages) ? answer.messages : [];
    const list = h('ul', 'accepted');
    for (const m of accepted) {
      const li = h('li');
      const a = h('a', 'mono', m.phone_number);
      a.href = '#/messages/' + encodeURIComponent(m.id);
      li.append(a, document.createTextNode(' — ' + m.state + ', ' + m.parts + (m.parts === 1 ? ' part' : ' parts')));
      list.append(li);
    }
    ui.result.replaceChildren(h('p', null, accepted.length === 1 ? 'Accepted:' : accepted.length + ' messages accepted:'), list);
    show(ui.result, true);
    ui.text.value = '';
    setText(ui.count, '');
  } catch (err) {
    showError(ui.error, err.code ? err.code + ': ' + err.message : err.message);
  } finally {
    button.disabled = false;
  }
});

export const view = {
  enter() {
    devices.fillSelects();
    unsubscribe = devices.subscribe(() => devices.fillSelects());
  },
  leave() {
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
  },
};
