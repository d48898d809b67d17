// Pair a phone: `POST /api/devices/pairing` gives a short-lived code and its QR image (an
// SVG the hub draws, shown as a data: image, which the CSP allows); the phone redeems it
// and the page says so as soon as the event stream reports a device it did not know.

import { $, h, setText, show, showError } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';

const ui = {
  form: $('pair-form'), name: $('pair-name'), error: $('pair-error'), box: $('pair-box'),
  qr: $('pair-qr'), code: $('pair-code'), hub: $('pair-hub'), expiry: $('pair-expiry'),
  result: $('pair-result'),
};

let known = null;   // device ids before the code was shown
let expires = 0;
let timer = null;

function tick() {
  const left = Math.round((expires - Date.now()) / 1000);
  if (left <= 0) {
    setText(ui.expiry, 'The code has expired; show a new one.');
    clearInterval(timer);
    return;
  }
  setText(ui.expiry, 'Expires in ' + Math.floor(left / 60) + ' min ' + (left % 60) + ' s');
}

async function lookForNewDevice() {
  const before = known;
  if (!before) return;
  await devices.refresh();
  if (known !== before) return; // found already, or a new code was shown
  const fresh = devices.list().filter((d) => !before.has(d.id));
  if (!fresh.length) return;
  const d = fresh[0];
  const line = h('span', null, 'Paired: ');
  const name = h('strong', 'paired-name', d.name || d.id);
  line.append(name, document.createTextNode(d.online ? ' is online.' : ' is registered; waiting for it to connect.'));
  const link = h('a', null, ' See the fleet');
  link.href = '#/fleet';
  ui.result.replaceChildren(line, link);
  if (d.online) known = null;
}

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.error, null);
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await devices.refresh();
    const name = ui.name.value.trim();
    const body = await api.post('/api/devices/pairing', name ? { name } : {});
    known = new Set(devices.list().map((d) => d.id));
    ui.qr.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(body.qr_svg);
    setText(ui.code, body.code);
    setText(ui.hub, body.hub_url);
    setText(ui.result, 'Waiting for the phone…');
    expires = Date.now() + (body.expires_in_s || 0) * 1000;
    clearInterval(timer);
    timer = setInterval(tick, 1000);
    tick();
    show(ui.box, true);
  } catch (err) {
    showError(ui.error, err.message);
  } finally {
    button.disabled = false;
  }
});

onEvent((event) => {
  if (known && event.type.startsWith('device.')) lookForNewDevice();
});

export const view = {
  enter() {},
  leave() {},
};
