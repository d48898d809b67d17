// smshub's console: plain ES modules, no dependencies and no build step, each module one
// job (api.js the REST calls, stream.js the event stream, session.js who is signed in,
// router.js the views by URL hash, devices.js the fleet's data, dom.js helpers, then one
// module per view: fleet, device, messages, message, queue, modems, inbox, send, pair, keys, users, webhooks, audit;
// history.js draws a device's history for fleet and device, actions.js builds a device's
// actions and its quota lines for both, charts.js draws the charts for its view and queue).
// This one boots it: the sign-in gate, the top bar, and starting and stopping the rest.

import { $, setText, setClass, setAttr, show, showError } from './dom.js';
import * as api from './api.js';
import * as stream from './stream.js';
import * as session from './session.js';
import * as router from './router.js';
import * as devices from './devices.js';
import { view as fleet, reset as resetFleet } from './fleet.js';
import { view as device, reset as resetDevice } from './device.js';
import { view as messages, reset as resetMessages } from './messages.js';
import { view as message } from './message.js';
import { view as queue } from './queue.js';
import { view as charts } from './charts.js';
import { view as modems } from './modems.js';
import { view as inbox } from './inbox.js';
import { view as send } from './send.js';
import './bulk.js';
import { view as pair } from './pair.js';
import { view as keys } from './keys.js';
import { view as users } from './users.js';
import { view as webhooks, detail as webhook } from './webhooks.js';
import { view as audit } from './audit.js';

router.register('fleet', null, fleet, 'device');
router.register('device', null, device);
router.register('messages', null, messages, 'message');
router.register('message', null, message);
router.register('queue', null, queue);
router.register('charts', null, charts);
router.register('modems', null, modems);
router.register('inbox', 'inbox:read', inbox);
router.register('send', 'messages:send', send);
router.register('pair', 'devices:write', pair);
router.register('keys', 'keys:admin', keys);
router.register('users', 'admin', users);
router.register('webhooks', 'webhooks:write', webhooks, 'webhook');
router.register('webhook', 'webhooks:write', webhook);
router.register('audit', 'admin', audit);

const ui = {
  gate: $('gate'), main: $('main'), nav: $('nav'), whoami: $('whoami'),
  whoName: $('who-name'), whoRole: $('who-role'), live: $('live'), banner: $('banner'),
  loginForm: $('login-form'), loginUser: $('login-user'), loginPassword: $('login-password'),
  loginError: $('login-error'), keyForm: $('key-form'), keyInput: $('key-input'), keyError: $('key-error'),
};

let signedIn = false;
let streamUp = null;

function onStreamState(up) {
  const was = streamUp;
  streamUp = up;
  setClass(ui.live, 'live ' + (up ? 'ok' : 'bad'));
  setText(ui.live, up ? 'Live' : 'Offline');
  setAttr(ui.live, 'title', up ? 'Receiving the hub’s events as they happen' : 'The event stream is down — retrying');
  show(ui.banner, !up);
  // Back after a drop: what was missed is read again.
  if (up && was === false) {
    devices.refresh();
    router.route(false);
  }
}

function showGate(message) {
  signedIn = false;
  show(ui.main, false);
  show(ui.nav, false);
  show(ui.whoami, false);
  show(ui.live, false);
  show(ui.banner, false);
  show(ui.gate, true);
  showError(ui.loginError, message || null);
  ui.loginPassword.value = '';
  ui.keyInput.value = '';
  ui.loginUser.focus();
}

/** Everything that runs while someone is signed in, stopped. */
function stopAll() {
  stream.close();
  devices.stop();
  router.stop();
  resetFleet();
  resetDevice();
  resetMessages();
  session.clear();
  streamUp = null;
}

async function enter() {
  let me;
  try {
    me = await session.load();
  } catch (err) {
    api.drop();
    showGate(err.status === 401 ? 'Sign in again: the hub no longer accepts this browser’s credential.' : 'The hub did not answer: ' + err.message);
    return;
  }
  signedIn = true;
  for (const link of ui.nav.querySelectorAll('a')) show(link, !link.dataset.scope || session.can(link.dataset.scope));
  setText(ui.whoName, me.via === 'api_key' ? me.label : me.name);
  setText(ui.whoRole, me.role);
  show(ui.gate, false);
  show(ui.main, true);
  show(ui.nav, true);
  show(ui.whoami, true);
  show(ui.live, true);
  onStreamState(false);
  show(ui.banner, false); // not "lost" before it was ever up
  streamUp = null;
  stream.open(onStreamState);
  devices.start();
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/fleet');
  router.route();
}

api.onCredentialLost(() => {
  if (!signedIn) return;
  stopAll();
  api.drop();
  showGate('Your session ended. Sign in again.');
});

ui.loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(ui.loginError, null);
  const button = ui.loginForm.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await api.login(ui.loginUser.value.trim(), ui.loginPassword.value);
    ui.loginPassword.value = '';
    await enter();
  } catch (err) {
    showError(ui.loginError, err.status === 401 ? 'Wrong username or password.' : err.message);
  } finally {
    button.disabled = false;
  }
});

ui.keyForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  api.useKey(key);
  showError(ui.keyError, null);
  await enter();
});

$('sign-out').addEventListener('click', async () => {
  stopAll();
  await api.logout();
  showGate();
});

// "Skip to content" moves focus without changing the address (the hash is the view).
document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  const heading = document.querySelector('.view:not([hidden]) h1');
  (heading || ui.main).focus();
});

// The demo's link carries its API key in the fragment (`#key=…`): use it, then drop it from
// the address bar and the history.
function keyFromFragment() {
  const frag = location.hash.replace(/^#/, '');
  if (!frag.startsWith('key=')) return null;
  const key = new URLSearchParams(frag).get('key');
  history.replaceState(null, '', location.pathname + location.search + '#/fleet');
  return key && key.trim() ? key.trim() : null;
}

window.addEventListener('hashchange', () => {
  const key = keyFromFragment();
  if (key) { stopAll(); api.useKey(key); enter(); }
});

const fragmentKey = keyFromFragment();
if (fragmentKey) api.useKey(fragmentKey);
if (fragmentKey || api.restore()) enter();
else showGate();
