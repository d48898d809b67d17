// The fleet as the console knows it: the last `GET /api/devices` answer, refetched when the
// event stream says a device changed (online, offline, rested, status, created, deleted)
// or a message moved (its device's in-flight and sent/failed counts changed). Battery
// level and signal strength have no event of their own (only crossing a threshold has,
// `device.status`), so they are also refetched every SLOW_MS while someone looks.
// Views read it here rather than each asking the hub.

import { get } from './api.js';
import { onEvent } from './stream.js';
import { debounce } from './dom.js';

const SLOW_MS = 15000;

let devices = [];
let names = new Map();
const listeners = new Set();
let timer = null;
let started = false;
let loaded = false;

export function list() { return devices; }

/** Whether the list was read at least once. */
export function isLoaded() { return loaded; }

/** The device's name, or its id when unknown. */
export function nameOf(id) { return names.get(id) || id; }

/** `text` with every device id in it replaced by the device's name (the hub's reasons say ids). */
export function named(text) {
  let out = String(text);
  for (const [id, name] of names) if (id !== name) out = out.split(id).join(name);
  return out;
}

/** Calls `fn(devices, error)` after every refetch. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Refetches now. */
export async function refresh() {
  if (!started) return;
  let error = null;
  try {
    // SIM cards carry their labels (`/api/sim-cards`); a list without them is still a list.
    const [body, cards] = await Promise.all([get('/api/devices'), get('/api/sim-cards').catch(() => [])]);
    devices = Array.isArray(body && body.devices) ? body.devices : [];
    const labels = new Map((Array.isArray(cards) ? cards : [])
      .filter((c) => c.device_id && c.slot != null && c.label)
      .map((c) => [c.device_id + '/' + c.slot, c.label]));
    for (const d of devices) {
      for (const sim of d.sims || []) sim.label = labels.get(d.id + '/' + sim.slot) || null;
    }
    names = new Map(devices.map((d) => [d.id, d.name || d.id]));
    loaded = true;
  } catch (err) {
    error = err;
  }
  if (!started) return; // signed out meanwhile
  for (const fn of listeners) fn(devices, error);
  clearTimeout(timer);
  if (started) timer = setTimeout(refresh, SLOW_MS);
}

const soon = debounce(refresh, 250);

onEvent((event) => {
  if (!started) return;
  if (event.type.startsWith('device.') || event.type.startsWith('message.') || event.type.startsWith('modem.')) soon();
});

export function start() {
  started = true;
  refresh();
}

export function stop() {
  started = false;
  loaded = false;
  clearTimeout(timer);
  devices = [];
  names = new Map();
}

/** Fills every `select.device-select` with the devices, keeping its first option and choice. */
export function fillSelects() {
  const sig = devices.map((d) => d.id + '\u0000' + d.name + (d.online ? '+' : '-')).join('\n');
  for (const select of document.querySelectorAll('select.device-select')) {
    if (select.dataset.sig === sig) continue; // unchanged: leave an open list alone
    select.dataset.sig = sig;
    const chosen = select.value;
    const first = select.options[0];
    const options = devices
      .slice()
      .sort((a, b) => String(a.name).localeCompare(String(b.name)))
      .map((d) => {
        const o = document.createElement('option');
        o.value = d.id;
        o.textContent = (d.name || d.id) + (d.online ? '' : ' (offline)');
        return o;
      });
    select.replaceChildren(first, ...options);
    select.value = chosen;
    if (select.value !== chosen) select.value = '';
  }
}
