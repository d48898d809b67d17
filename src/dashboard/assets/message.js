// One message's page: `GET /api/sms/{id}` with its history (every state and history event,
// with its time and device), why it still waits if it does, and Cancel while no device has
// accepted it (`DELETE /api/sms/{id}`). Refetched when the event stream names this message.

import { $, h, setText, setClass, show, showError, debounce, fullTime, stateClass } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';
import { can } from './session.js';

const ui = {
  title: $('message-title'), state: $('message-state'), error: $('message-error'),
  facts: $('message-facts'), cancel: $('message-cancel'), timeline: $('message-timeline'),
};

let id = null;

function fact(term, value) {
  if (value == null || value === '') return [];
  return [h('dt', null, term), h('dd', null, String(value))];
}

function linkFact(link, rest) {
  const dd = h('dd');
  dd.append(link, document.createTextNode(rest));
  return dd;
}

function render(msg) {
  setText(ui.title, 'Message to ' + msg.phone_number);
  setText(ui.state, msg.state);
  setClass(ui.state, 'pill ' + stateClass(msg.state));
  const e = msg.error;
  const deviceLink = msg.device_id ? h('a', null, devices.nameOf(msg.device_id)) : null;
  if (deviceLink) deviceLink.href = '#/fleet/' + encodeURIComponent(msg.device_id);
  ui.facts.replaceChildren(
    ...fact('Recipient', msg.phone_number),
    ...fact('Text', msg.message),
    ...fact('State', msg.state),
    ...fact('Waiting because', msg.waiting_reason ? devices.named(msg.waiting_reason) : null),
    ...(deviceLink ? [h('dt', null, 'Device'), linkFact(deviceLink, msg.sim_slot != null ? ', SIM ' + (msg.sim_slot + 1) : '')] : []),
    ...fact('Asked for device', msg.requested_device_id ? devices.nameOf(msg.requested_device_id) : null),
    ...fact('Parts', msg.parts),
    ...fact('Attempts', msg.attempts),
    ...fact('Delivery report', msg.delivery_report ? 'asked for' : 'not asked for'),
    ...fact('Error', e ? e.code + (e.temporary ? ' (temporary)' : '') + ': ' + e.message : null),
    ...fact('Scheduled for', msg.schedule_at ? fullTime(msg.schedule_at) : null),
    ...fact('Valid until', msg.valid_until ? fullTime(msg.valid_until) : null),
    ...fact('Created', fullTime(msg.created_at)),
    ...fact('Id', msg.id),
  );
  show(ui.cancel, can('messages:send') && (msg.state === 'queued' || msg.state === 'dispatched'));
  // The history when the hub kept one; else the times of the states reached.
  const steps = Array.isArray(msg.history) && msg.history.length
    ? msg.history
    : Object.entries(msg.states || {}).map(([event, at]) => ({ event, at }))
      .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  ui.timeline.replaceChildren(...steps.map((step) => {
    const li = h('li', 'step ' + stateClass(step.event));
    const time = h('time', 'step-time', fullTime(step.at));
    time.dateTime = step.at;
    li.append(time, h('span', 'step-event', step.event));
    if (step.device_id) li.append(h('span', 'step-device', devices.nameOf(step.device_id)));
    if (step.detail) li.append(h('span', 'step-detail', step.detail));
    return li;
  }));
}

async function refresh() {
  if (!id) return;
  const wanted = id;
  try {
    const msg = await api.get('/api/sms/' + encodeURIComponent(wanted));
    if (wanted !== id) return;
    showError(ui.error, null);
    render(msg);
  } catch (err) {
    if (wanted === id) showError(ui.error, err.status === 404 ? 'No such message.' : 'Could not read the message: ' + err.message);
  }
}
const soon = debounce(refresh, 200);

ui.cancel.addEventListener('click', async () => {
  ui.cancel.disabled = true;
  try {
    render(await api.del('/api/sms/' + encodeURIComponent(id)));
  } catch (err) {
    showError(ui.error, err.message);
  } finally {
    ui.cancel.disabled = false;
  }
});

onEvent((event) => {
  if (id && event.message_id === id) soon();
});

export const view = {
  enter(arg) {
    id = arg;
    setText(ui.title, 'Message');
    setText(ui.state, '');
    ui.facts.replaceChildren();
    ui.timeline.replaceChildren();
    show(ui.cancel, false);
    refresh();
  },
  leave() { id = null; },
};
