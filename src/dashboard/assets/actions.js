// A device's actions, for `devices:write`, shared by its card in the fleet and its page:
// rest it by hand and end a rest (`POST`/`DELETE /api/devices/{id}/rest`), its sending
// limits (`PUT /api/devices/{id}/limits`), rotate its token, delete it. Each is built once
// per place and kept in step with the device by `update`. Inputs sit inside their labels,
// so the card and the page of one device never share an element id.

import { h, show, setWidth, confirmButton } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';

// The editable limits, empty fields meaning none (all empty: the hub's defaults again).
const LIMIT_FIELDS = [
  ['per_minute', 'Per minute'], ['per_hour', 'Per hour'], ['per_day', 'Per day'],
  ['recipients_per_day', 'Recipients per day'], ['min_interval_ms', 'Gap between sends (ms)'],
];

const path = (id, tail) => '/api/devices/' + encodeURIComponent(id) + (tail || '');

function field(label, attrs) {
  const l = h('label', null, label);
  const input = h('input');
  Object.assign(input, attrs);
  l.append(input);
  return l;
}

/** A `details` whose summary opens a form; `submit(form)` runs on submission. */
function editor(cls, summary, formCls, fields, button, submit) {
  const details = h('details', cls);
  details.append(h('summary', 'btn btn-ghost', summary));
  const form = h('form', formCls);
  const go = h('button', 'btn btn-primary', button);
  go.type = 'submit';
  form.append(...fields, go);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    go.disabled = true;
    try {
      if (await submit(form)) details.open = false;
    } finally { go.disabled = false; }
  });
  details.append(form);
  details._form = form;
  return details;
}

/**
 * The actions of one device in `box`: `device()` gives its id and name, `note(text)` says
 * what happened (or why not), `deleted()` runs once it is deleted. Returns `update(dev)`.
 */
export function build(box, { device, note, deleted }) {
  const fail = (err) => { note(err.message); return false; };
  const rest = editor('rest-editor', 'Rest…', 'rest-form', [
    field('Minutes', { name: 'minutes', type: 'number', min: '1', max: '10080', value: '60', required: true }),
    field('Reason', { name: 'reason', type: 'text', maxLength: 200, autocomplete: 'off' }),
  ], 'Rest', async (form) => {
    const body = { minutes: Number(form.elements.minutes.value) };
    const reason = form.elements.reason.value.trim();
    if (reason) body.reason = reason;
    try {
      await api.post(path(device().id, '/rest'), body);
      form.elements.reason.value = '';
      note('Rested for ' + body.minutes + ' min');
      devices.refresh();
      return true;
    } catch (err) { return fail(err); }
  });
  const limits = editor('limits-editor', 'Limits', 'limits-form', LIMIT_FIELDS.map(([name, label]) =>
    field(label, { name, type: 'number', min: '0', inputMode: 'numeric' })), 'Save limits', async (form) => {
    const body = {};
    for (const [name] of LIMIT_FIELDS) {
      const v = String(form.elements[name].value).trim();
      if (v !== '') body[name] = Number(v);
    }
    try {
      await api.put(path(device().id, '/limits'), Object.keys(body).length ? body : null);
      note(null);
      devices.refresh();
      return true;
    } catch (err) { return fail(err); }
  });
  const unrest = h('button', 'btn btn-ghost unrest', 'Unrest');
  unrest.type = 'button';
  unrest.addEventListener('click', async () => {
    unrest.disabled = true;
    try {
      await api.del(path(device().id, '/rest'));
      note('Rest ended');
      devices.refresh();
    } catch (err) { note(err.message); } finally { unrest.disabled = false; }
  });
  const rotate = confirmButton('Rotate token', 'Really rotate? The phone must pair again', async () => {
    try {
      const body = await api.post(path(device().id, '/token'));
      note('New token (shown once): ' + body.token);
    } catch (err) { note(err.message); }
  });
  rotate.className = 'btn btn-ghost rotate';
  const remove = confirmButton('Delete', 'Really delete?', async () => {
    try {
      await api.del(path(device().id));
      devices.refresh();
      if (deleted) deleted();
    } catch (err) { note(err.message); }
  });
  box.append(rest, limits, rotate, unrest, remove);

  return function update(dev) {
    const name = dev.name || dev.id;
    unrest.setAttribute('aria-label', 'End the rest of ' + name);
    remove.setAttribute('aria-label', 'Delete ' + name);
    const rested = Boolean(dev.rested_until);
    show(rest, !rested);
    show(unrest, rested);
    // The editor shows the stored limits, except while someone edits them.
    if (!limits.open) {
      for (const [key] of LIMIT_FIELDS) {
        const v = dev.limits && dev.limits[key] != null && dev.limits[key] !== 0 ? String(dev.limits[key]) : '';
        limits._form.elements[key].value = v;
      }
    }
  };
}

/** The device's own limits in words (`null`: the hub's defaults). */
export function describeLimits(limits) {
  if (!limits) return 'Limits: the hub’s defaults';
  const parts = [];
  if (limits.per_minute != null) parts.push(limits.per_minute + ' per minute');
  if (limits.per_hour != null) parts.push(limits.per_hour + ' per hour');
  if (limits.per_day != null) parts.push(limits.per_day + ' per day');
  if (limits.recipients_per_day != null) parts.push(limits.recipients_per_day + ' recipients per day');
  if (limits.min_interval_ms) parts.push(limits.min_interval_ms + ' ms between sends');
  return 'Limits: ' + (parts.length ? parts.join(', ') : 'none');
}

// The caps of a SIM's quota that are set, as (used, cap, words).
function caps(q) {
  const l = q.limits || {};
  return [
    [q.used_day, l.per_day, 'per day'],
    [q.used_hour, l.per_hour, 'per hour'],
    [q.used_minute, l.per_minute, 'per minute'],
    [q.recipients_day, l.recipients_per_day, 'recipients per day'],
  ].filter(([, cap]) => cap != null);
}

/**
 * How much of each cap a device's SIMs used (`dev.quota`), a line per SIM: "SIM 1: 12 of 500
 * per day, 3 of 60 per hour" with a bar for the fullest cap (the words say it all; the bar
 * only repeats it). With `all`, SIMs without a cap too ("SIM 2: 4 parts today, no cap").
 */
export function quotaLines(dev, all) {
  const out = [];
  for (const q of Array.isArray(dev.quota) ? dev.quota : []) {
    const set = caps(q);
    if (!set.length && !all) continue;
    const words = set.length
      ? set.map(([used, cap, what]) => used + ' of ' + cap + ' ' + what).join(', ')
      : q.used_day + ' parts in the last day, no cap';
    const li = h('li', 'quota');
    li.dataset.slot = String(q.slot);
    li.append(h('span', 'quota-text', 'SIM ' + (q.slot + 1) + ': ' + words +
      (q.paced_until ? ' (pacing)' : '')));
    if (set.length) {
      const fullest = Math.max(...set.map(([used, cap]) => (cap ? used / cap : 1)));
      const meter = h('div', 'meter' + (fullest >= 1 ? ' full' : ''));
      meter.setAttribute('aria-hidden', 'true');
      const fill = h('div', 'meter-fill');
      setWidth(fill, fullest * 100);
      meter.append(fill);
      li.append(meter);
    }
    out.push(li);
  }
  return out;
}
