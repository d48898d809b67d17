// Drives Debian's chromium (puppeteer-core, no browser download) through the console of a
// live hub that tests/it/console.rs started. It talks to that test on stdout, one line per
// request: `phones` (start the simulated phones now), `receive` (the first phone receives an
// SMS), `modem` (attach an emulated modem), `stored` (an SMS arrives on the modem and stays
// stored there), `pair CODE` (make a phone redeem the code), `kill` (silence the phone named
// SILENT_NAME without closing its socket). Its last
// line is `ok`; any failed check throws, prints why and exits non-zero. Every wait has a
// timeout, and a watchdog ends the whole run.
//
// Environment: HUB (http://127.0.0.1:PORT), USERNAME, PASSWORD (an admin; VIEWER is a
// viewer with the same password), API_KEY (the
// demo-style key login), PHONE_PREFIX (the simulated phones' names), PHONES (how many),
// PAIRED_NAME, SILENT_NAME, SIM_LABEL (its SIM card's label), CHROMIUM (the browser binary), SCREENSHOTS (a directory).

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import puppeteer from 'puppeteer-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const HUB = env('HUB');
const USERNAME = env('USERNAME');
const PASSWORD = env('PASSWORD');
const VIEWER = env('VIEWER');
const API_KEY = env('API_KEY');
const PREFIX = env('PHONE_PREFIX');
const PHONES = Number(env('PHONES'));
const PAIRED_NAME = env('PAIRED_NAME');
const SILENT_NAME = env('SILENT_NAME');
const SIM_LABEL = env('SIM_LABEL');
const SHOTS = env('SCREENSHOTS');
mkdirSync(SHOTS, { recursive: true });

// Generous: under `cargo test` the browser shares two cores with every other test.
const WAIT = 30_000;
const watchdog = setTimeout(() => {
  console.error('the browser test ran out of time (watchdog)');
  process.exit(3);
}, 420_000);

const problems = [];
const step = (what) => console.error(`-- ${what}`);
const tell = (line) => console.log(line);

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** Watches a page for console errors, uncaught exceptions, failed and refused requests. */
function watch(page, label, allowed) {
  page.on('console', (msg) => {
    // Chromium logs every 4xx/5xx answer so; the response handler below judges those.
    if (msg.text().startsWith('Failed to load resource: the server responded with a status of')) return;
    if (msg.type() === 'error' || msg.type() === 'warn') problems.push(`${label} console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label} page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    const why = req.failure() ? req.failure().errorText : '?';
    // Closing the event stream (signing out, leaving the page) aborts its request.
    if (why === 'net::ERR_ABORTED' && new URL(req.url()).pathname === '/api/events') return;
    problems.push(`${label} request failed: ${req.method()} ${req.url()} ${why}`);
  });
  page.on('response', (res) => {
    if (res.status() < 400) return;
    const key = `${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`;
    const at = allowed.indexOf(key);
    if (at >= 0) allowed.splice(at, 1);
    else problems.push(`${label} refused: ${key}`);
  });
}

const text = (page, selector) => page.$eval(selector, (n) => n.textContent.trim());

async function waitText(page, selector, wanted, timeout = WAIT) {
  try {
    await page.waitForFunction(
      (sel, want) => {
        const n = document.querySelector(sel);
        return !!n && !n.closest('[hidden]') && n.textContent.includes(want);
      },
      { timeout },
      selector,
      wanted,
    );
  } catch (err) {
    const seen = await page.$eval(selector, (n) => n.textContent.trim()).catch(() => '(absent)');
    throw new Error(`${selector} never showed ${JSON.stringify(wanted)}; it shows ${JSON.stringify(seen)}`);
  }
}

async function go(page, hash, heading) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction(
    (h) => { const n = document.querySelector(h); return n && !n.closest('[hidden]'); },
    { timeout: WAIT },
    heading,
  );
  // Focus follows the view, for keyboards and screen readers.
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  assert(`#${focused}` === heading, `after ${hash} the focus is on #${focused}, not ${heading}`);
}

/** Both widths of the current view; at the phone's, nothing may be wider than the screen. */
async function shoot(page, name) {
  // From the top: a full-page shot of a scrolled page draws the sticky bar over the middle.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewport({ width: 1280, height: 900 });
  await page.screenshot({ path: `${SHOTS}/${name}-desktop.png`, fullPage: true });
  // Only the width: changing isMobile would make puppeteer reload the page.
  await page.setViewport({ width: 390, height: 844 });
  await new Promise((r) => setTimeout(r, 150));
  await page.screenshot({ path: `${SHOTS}/${name}-phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  // Tables scroll inside their own box; the page itself must not.
  if (overflow > 1) {
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((n) => !n.closest('[hidden]') && n.getBoundingClientRect().width > window.innerWidth + 1)
      .reverse()
      .slice(0, 6)
      .map((n) => `${n.tagName.toLowerCase()}#${n.id}.${n.className} ${Math.round(n.getBoundingClientRect().width)}px`));
    assert(false, `${name}: the page is ${overflow}px wider than a phone's screen: ${wide.join(', ')}`);
  }
  await page.setViewport({ width: 1280, height: 900 });
}

/** Keyboard and screen-reader basics of what is on screen. */
async function accessible(page, name) {
  const faults = await page.evaluate(() => {
    const out = [];
    for (const n of document.querySelectorAll('input, select, textarea')) {
      if (n.closest('[hidden]') || n.type === 'hidden') continue;
      if (!(n.labels && n.labels.length) && !n.getAttribute('aria-label')) out.push(`unlabelled ${n.tagName} ${n.name || n.id}`);
    }
    for (const n of document.querySelectorAll('[onclick], div[role=button], span[role=button]')) out.push(`not a button: ${n.outerHTML.slice(0, 60)}`);
    for (const n of document.querySelectorAll('button')) {
      if (!n.closest('[hidden]') && !n.textContent.trim() && !n.getAttribute('aria-label')) out.push('a button without a name');
    }
    return out;
  });
  assert(faults.length === 0, `${name}: ${faults.join('; ')}`);
}

const browser = await puppeteer.launch({
  executablePath: env('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  protocolTimeout: 30_000,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  // The one refusal this run asks for: a wrong password.
  watch(page, 'operator', ['POST /api/auth/login 401']);
  await page.setViewport({ width: 1280, height: 900 });

  step('the page and its CSP');
  const response = await page.goto(`${HUB}/`, { waitUntil: 'load' });
  const csp = response.headers()['content-security-policy'] || '';
  for (const part of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
    assert(csp.includes(part), `the page's CSP lacks ${part}: ${csp}`);
  }
  assert(!/unsafe-inline|unsafe-eval/.test(csp), `the CSP allows inline code: ${csp}`);
  await page.waitForSelector('#login-form', { visible: true });
  await accessible(page, 'sign-in');
  await shoot(page, 'signin');

  step('a wrong password is refused');
  await page.type('#login-user', USERNAME);
  await page.type('#login-password', 'not-the-password');
  await page.keyboard.press('Enter');
  await waitText(page, '#login-error', 'Wrong username or password');

  step('sign in with the keyboard');
  await page.$eval('#login-password', (n) => { n.value = ''; });
  await page.type('#login-password', PASSWORD);
  await page.keyboard.press('Enter');
  await waitText(page, '#who-name', USERNAME);
  assert((await text(page, '#who-role')) === 'admin', `role: ${await text(page, '#who-role')}`);
  await waitText(page, '#live', 'Live');
  await waitText(page, '#devices-empty', 'No devices');

  step('the phones appear live');
  tell('phones');
  const names = Array.from({ length: PHONES }, (_, n) => `${PREFIX}-${n + 1}`);
  await page.waitForFunction(
    (want) => want.every((name) => [...document.querySelectorAll('#devices .card')]
      .some((c) => c.dataset.name === name && c.dataset.online === 'true')),
    { timeout: WAIT },
    names.concat([SILENT_NAME]),
  );
  const shown = await page.$$eval('#devices .card-name', (ns) => ns.map((n) => n.textContent));
  for (const name of names) assert(shown.includes(name), `the card of ${name} shows ${JSON.stringify(shown)}`);
  // Full names: the text is not cut by the layout (nothing overflows its box).
  const cut = await page.$$eval('#devices .card-name', (ns) => ns.filter((n) => n.scrollWidth > n.clientWidth + 1).map((n) => n.textContent));
  assert(cut.length === 0, `names cut short: ${cut}`);
  await waitText(page, '#devices .card .seen', 'Online since');
  await waitText(page, '#devices .card .sim-dbm', 'dBm');
  await waitText(page, '#devices .card .batt-pct', '%');
  await waitText(page, '#devices', `Label: ${SIM_LABEL}`);
  // Each SIM's signal over the last 6 h, as a sparkline that says itself in words.
  await page.waitForFunction(
    (name) => [...document.querySelectorAll('#devices .card')].some((c) => c.dataset.name === name
      && /SIM 1 signal over 6 h/.test((c.querySelector('.sim-spark svg.spark') || { getAttribute: () => '' }).getAttribute('aria-label'))),
    { timeout: WAIT },
    SILENT_NAME,
  );
  // Not charging: no bolt drawn.
  const bolts = await page.$$eval('#devices .card', (cs) => cs.map((c) => [c.dataset.name, !!c.querySelector('.bolt:not([hidden])')]));
  assert(bolts.some(([name, bolt]) => name === SILENT_NAME && !bolt), `bolts: ${JSON.stringify(bolts)}`);
  await waitText(page, '.tile[data-stat="devices"] .tile-value', String(PHONES + 1));

  step('filters');
  await page.select('#fleet-filters select[name=online]', 'offline');
  await page.waitForFunction(() => document.querySelectorAll('#devices .card').length === 0);
  await page.select('#fleet-filters select[name=online]', '');
  // The silent phone reports no operator: only the simulated phones are on "Simulated Mobile".
  await page.select('#fleet-filters select[name=operator]', 'Simulated Mobile');
  await page.waitForFunction((n) => document.querySelectorAll('#devices .card').length === n, {}, PHONES);
  await page.select('#fleet-filters select[name=operator]', '');
  await page.type('#fleet-filters input[name=q]', SILENT_NAME);
  await page.waitForFunction(() => document.querySelectorAll('#devices .card').length === 1);
  await page.$eval('#fleet-filters input[name=q]', (n) => { n.value = ''; n.dispatchEvent(new Event('input', { bubbles: true })); });
  await page.select('#fleet-filters select[name=sort]', 'name');
  await page.waitForFunction((n) => document.querySelectorAll('#devices .card').length === n, {}, PHONES + 1);
  await accessible(page, 'fleet');

  step("a device's limits");
  const card = `#devices .card[data-name="${PREFIX}-2"]`;
  await waitText(page, `${card} .limits-line`, 'the hub’s defaults');
  await page.click(`${card} .limits-editor summary`);
  await page.type(`${card} input[name=per_hour]`, '60');
  await page.type(`${card} input[name=per_day]`, '500');
  await page.click(`${card} .limits-form button[type=submit]`);
  await waitText(page, `${card} .limits-line`, 'Limits: 60 per hour, 500 per day');
  const listed = await (await fetch(`${HUB}/api/devices`, { headers: { 'X-API-Key': API_KEY } })).json();
  const limited = listed.devices.find((d) => d.name === `${PREFIX}-2`);
  assert(limited.limits && limited.limits.per_hour === 60 && limited.limits.per_day === 500, `stored limits: ${JSON.stringify(limited.limits)}`);

  step('how much of each cap is used, and what was sent in the last 24 h');
  await waitText(page, `${card} .quotas`, 'SIM 1: 0 of 500 per day, 0 of 60 per hour');
  const capped = await (await fetch(`${HUB}/api/send-sms`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ phone_number: '+14155552676', message: 'Counted against its caps', device_id: limited.id }),
  })).json();
  assert(capped.id, `the send through ${PREFIX}-2: ${JSON.stringify(capped)}`);
  await waitText(page, `${card} .quotas`, 'SIM 1: 1 of 500 per day, 1 of 60 per hour');
  // Counted by the hub's sampler every few seconds, read again on the next event or poll.
  await waitText(page, `${card} .stat-sub`, '1 in 24 h');
  const counted = (await (await fetch(`${HUB}/api/devices`, { headers: { 'X-API-Key': API_KEY } })).json())
    .devices.find((d) => d.name === `${PREFIX}-2`);
  assert(counted.sent_24h === 1 && counted.failed_24h === 0 && counted.quota[0].used_day === 1
    && counted.quota[0].limits.per_day === 500, `its quota and day: ${JSON.stringify(counted)}`);
  await shoot(page, 'fleet');

  step('rest a device by hand, then end its rest');
  await page.click(`${card} .rest-editor summary`);
  await page.$eval(`${card} .rest-form input[name=minutes]`, (n) => { n.value = ''; });
  await page.type(`${card} .rest-form input[name=minutes]`, '30');
  await page.type(`${card} .rest-form input[name=reason]`, 'swapping its SIM');
  await accessible(page, 'fleet-rest');
  await page.click(`${card} .rest-form button[type=submit]`);
  await waitText(page, `${card} .rest-line`, 'swapping its SIM');
  await waitText(page, `${card} .badge.rested`, 'Rested');
  await page.waitForSelector(`${card} button.unrest`, { visible: true });
  assert(await page.$eval(`${card} .rest-editor`, (n) => n.hidden), 'a rested card still offers Rest');
  const restedList = await (await fetch(`${HUB}/api/devices`, { headers: { 'X-API-Key': API_KEY } })).json();
  const restedOne = restedList.devices.find((d) => d.name === `${PREFIX}-2`);
  assert(restedOne.rested_until && restedOne.rest_reason === 'swapping its SIM', `stored rest: ${JSON.stringify(restedOne)}`);
  await shoot(page, 'fleet-rested');
  await page.click(`${card} button.unrest`);
  await page.waitForFunction((sel) => {
    const line = document.querySelector(`${sel} .rest-line`);
    return line && line.hidden && !document.querySelector(`${sel} .rest-editor`).hidden;
  }, { timeout: WAIT }, card);
  const unrested = (await (await fetch(`${HUB}/api/devices`, { headers: { 'X-API-Key': API_KEY } })).json())
    .devices.find((d) => d.name === `${PREFIX}-2`);
  assert(!unrested.rested_until, `still rested: ${JSON.stringify(unrested)}`);

  step('send a message from the form');
  await go(page, '#/send', '#send-title');
  await page.type('#send-to', '+14155552671');
  await page.type('#send-text', 'Hello from the console');
  await accessible(page, 'send');
  await page.click('#send-form button[type=submit]');
  await waitText(page, '#send-result', '+14155552671');
  const href = await page.$eval('#send-result a', (a) => a.getAttribute('href'));
  const id = decodeURIComponent(href.split('/').pop());
  assert(/^[0-9a-f-]{36}$/.test(id), `the accepted message links to ${href}`);

  step('a bulk send from CSV with a template');
  await page.type('#bulk-csv', 'phone_number,name\n+14155552673,Ana\n+14155552674,"Bo, Jr."\n');
  await page.type('#bulk-template', 'Hi {{name}}, your code is ready');
  await waitText(page, '#bulk-preview', '2 messages; the first: Hi Ana, your code is ready');
  await page.click('#bulk-form button[type=submit]');
  await waitText(page, '#bulk-result', '2 of 2 accepted.');
  const bo = await (await fetch(`${HUB}/api/sms?phone_number=${encodeURIComponent('+14155552674')}`, { headers: { 'X-API-Key': API_KEY } })).json();
  assert(bo.messages.length === 1 && bo.messages[0].message === 'Hi Bo, Jr., your code is ready', `the bulk message: ${JSON.stringify(bo.messages)}`);
  await shoot(page, 'send');

  step('it reaches delivered in the list');
  await go(page, '#/messages', '#messages-title');
  await page.waitForFunction(
    (mid) => {
      const row = document.querySelector(`#messages tr[data-id="${mid}"]`);
      return row && row.querySelector('.pill').textContent === 'delivered';
    },
    { timeout: WAIT },
    id,
  );
  await page.select('#message-filters select[name=state]', 'failed');
  await page.waitForFunction((mid) => !document.querySelector(`#messages tr[data-id="${mid}"]`), {}, id);
  await page.select('#message-filters select[name=state]', 'delivered');
  await page.waitForSelector(`#messages tr[data-id="${id}"]`);
  // A time window that ends before it was sent hides it; one that holds it shows it.
  const local = (ms) => { const d = new Date(ms - new Date().getTimezoneOffset() * 60000); return d.toISOString().slice(0, 16); };
  await page.$eval('#message-filters input[name=until]', (n, v) => { n.value = v; }, local(Date.now() - 3600_000));
  await page.click('#message-filters button[type=submit]');
  await page.waitForFunction((mid) => !document.querySelector(`#messages tr[data-id="${mid}"]`), {}, id);
  await page.$eval('#message-filters input[name=until]', (n) => { n.value = ''; });
  await page.$eval('#message-filters input[name=since]', (n, v) => { n.value = v; }, local(Date.now() - 3600_000));
  await page.click('#message-filters button[type=submit]');
  await page.waitForSelector(`#messages tr[data-id="${id}"]`);

  step('filter the messages by the API key that sent them');
  // Through a simulated phone (the silent one never accepts an offer).
  const through = (await (await fetch(`${HUB}/api/devices`, { headers: { 'X-API-Key': API_KEY } })).json())
    .devices.find((d) => d.name === `${PREFIX}-1`).id;
  const byKey = await (await fetch(`${HUB}/api/send-sms`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ phone_number: '+14155552675', message: 'Sent with the API key', delivery_report: true, device_id: through }),
  })).json();
  assert(byKey.id, `the send with the key: ${JSON.stringify(byKey)}`);
  const keyId = (await (await fetch(`${HUB}/api/auth/me`, { headers: { 'X-API-Key': API_KEY } })).json()).owner;
  let keyed = null;
  for (let n = 0; n < 100; n++) {
    keyed = await (await fetch(`${HUB}/api/sms?api_key_id=${keyId}&state=delivered`, { headers: { 'X-API-Key': API_KEY } })).json();
    if (keyed.messages && keyed.messages.some((m) => m.id === byKey.id)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert(keyed.messages.some((m) => m.id === byKey.id), `the key's message is not listed delivered: ${JSON.stringify(keyed)} ${JSON.stringify(await (await fetch(`${HUB}/api/sms/${byKey.id}`, { headers: { 'X-API-Key': API_KEY } })).json())}`);
  await page.waitForFunction((kid) => [...document.querySelectorAll('#message-key option')].some((o) => o.value === kid), { timeout: WAIT }, keyId);
  await page.select('#message-filters select[name=api_key_id]', keyId);
  await page.waitForSelector(`#messages tr[data-id="${byKey.id}"]`).catch(async (err) => {
    const rows = await page.$$eval('#messages tr', (ns) => ns.map((n) => n.dataset.id));
    throw new Error(`${err.message}; the list shows ${rows} with ${await page.evaluate(() => new URLSearchParams(new FormData(document.querySelector('#message-filters'))).toString())}`);
  });
  await page.waitForFunction((mid) => !document.querySelector(`#messages tr[data-id="${mid}"]`), {}, id);
  await accessible(page, 'messages');
  await shoot(page, 'messages-by-key');
  await page.select('#message-filters select[name=api_key_id]', '');
  await page.waitForSelector(`#messages tr[data-id="${id}"]`);
  await shoot(page, 'messages');

  step('and on its page, with its timeline');
  await page.click(`#messages tr[data-id="${id}"] a`);
  await waitText(page, '#message-state', 'delivered');
  const steps = await page.$$eval('#message-timeline .step-event', (ns) => ns.map((n) => n.textContent));
  for (const want of ['queued', 'sent', 'delivered']) assert(steps.includes(want), `the timeline lacks ${want}: ${steps}`);
  const devicesInTimeline = await page.$$eval('#message-timeline .step-device', (ns) => ns.map((n) => n.textContent));
  assert(devicesInTimeline.some((d) => d.startsWith(PREFIX)), `the timeline names no device: ${devicesInTimeline}`);
  await waitText(page, '#message-facts', 'Hello from the console');
  assert(await page.$eval('#message-cancel', (b) => b.hidden), 'a delivered message offers Cancel');
  await shoot(page, 'message');

  step("the device's page, from the message's");
  await page.evaluate(() => { location.hash = document.querySelector('#message-facts a').getAttribute('href'); });
  await waitText(page, '#device-title', PREFIX);
  await waitText(page, '#device-messages', '+14155552671');
  await waitText(page, '#device-messages', 'delivered');
  await waitText(page, '#device-no-failures', 'No failures');
  await waitText(page, '#device-facts', 'dBm');

  step("the device's history: online, battery, signal, sent and failed");
  await waitText(page, '#device-history figure[data-history="status"] figcaption', 'online');
  await waitText(page, '#device-history figure[data-history="battery"] figcaption', '%, last');
  await waitText(page, '#device-history figure[data-history="signal"] figcaption', 'SIM 1: last');
  await waitText(page, '#device-history figure[data-history="traffic"] figcaption', 'sent');
  assert(await page.$('#device-history figure[data-history="status"] rect.presence-online'), 'no online period drawn');
  await page.select('#device-history-window select[name=window]', '1h');
  await page.waitForFunction(() => document.querySelector('#device-history').dataset.step === '60', { timeout: WAIT });
  await waitText(page, '#device-history figure[data-history="battery"] figcaption', '%, last');

  step("rest the device from its page, then end its rest");
  const rest = '#device-actions .rest-editor';
  await page.click(`${rest} summary`);
  await page.$eval(`${rest} input[name=minutes]`, (n) => { n.value = ''; });
  await page.type(`${rest} input[name=minutes]`, '15');
  await page.type(`${rest} input[name=reason]`, 'checked from its page');
  await page.click(`${rest} button[type=submit]`);
  await waitText(page, '#device-facts', 'checked from its page');
  await page.waitForSelector('#device-actions button.unrest', { visible: true });
  assert(await page.$eval(rest, (n) => n.hidden), 'a rested device still offers Rest on its page');
  await page.click('#device-actions button.unrest');
  await page.waitForSelector(rest, { visible: true });
  await page.waitForFunction(() => !document.querySelector('#device-facts').textContent.includes('Rested until'), { timeout: WAIT });

  step("set the device's limits from its page, and see its quota used");
  await page.click('#device-actions .limits-editor summary');
  await page.$eval('#device-actions input[name=per_day]', (n) => { n.value = ''; });
  await page.type('#device-actions input[name=per_day]', '300');
  await page.click('#device-actions .limits-form button[type=submit]');
  await waitText(page, '#device-facts', '300 per day');
  await waitText(page, '#device-quota', ' of 300 per day');
  await waitText(page, '#device-facts', 'in the last 24 h');
  await accessible(page, 'device');
  await shoot(page, 'device');

  step('a received SMS arrives in the inbox live');
  await go(page, '#/inbox', '#inbox-title');
  await waitText(page, '#inbox-empty', 'Nothing received');
  tell('receive');
  await waitText(page, '#inbox', 'Reply from the field');
  await waitText(page, '#inbox', `${PREFIX}-1`);
  await accessible(page, 'inbox');
  await shoot(page, 'inbox');

  step('search the inbox');
  const search = '#inbox-filters input[name=q]';
  await page.type(search, 'FROM THE FIELD');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#inbox tr').length === 1, { timeout: WAIT });
  await waitText(page, '#inbox', 'Reply from the field');
  await page.$eval(search, (n) => { n.value = ''; });
  await page.type(search, 'no_such%text');
  await page.keyboard.press('Enter');
  await waitText(page, '#inbox-empty', 'Nothing received');
  await page.$eval(search, (n) => { n.value = ''; });
  await page.keyboard.press('Enter');
  await waitText(page, '#inbox', 'Reply from the field');

  step("a modem: its SIM, its balance, a USSD code");
  tell('modem');
  await go(page, '#/modems', '#modems-title');
  const modemCard = '#modems .modem-card';
  await waitText(page, modemCard, 'Djezzy');
  await waitText(page, `${modemCard} .pill`, 'ready');
  await waitText(page, modemCard, 'Balance');
  const [balanceButton] = await page.$$(`${modemCard} button`).then(async (bs) => {
    const named = [];
    for (const b of bs) if ((await b.evaluate((n) => n.textContent)) === 'Balance') named.push(b);
    return named;
  });
  await balanceButton.click();
  await waitText(page, `${modemCard} .modem-out`, '1250,50 DA');
  await page.type(`${modemCard} input[name=code]`, '*710#');
  await page.click(`${modemCard} .ussd button[type=submit]`);
  await waitText(page, `${modemCard} .modem-out`, 'Internet: 2.5 Go restants');
  const clickNamed = async (selector, name) => {
    for (const b of await page.$$(selector)) {
      if ((await b.evaluate((n) => n.textContent)) === name) return b.click();
    }
    throw new Error(`no ${selector} named ${name}`);
  };
  await clickNamed(`${modemCard} button`, 'Data balance');
  await waitText(page, `${modemCard} .modem-out`, 'Forfait internet: 3.5 Go');
  await page.type(`${modemCard} input[name=voucher]`, '12345678');
  await page.click(`${modemCard} .recharge button[type=submit]`);
  await waitText(page, `${modemCard} .modem-out`, 'Recharge de 500 DA effectuee');

  step('a message stored on the modem, deleted');
  tell('stored');
  await page.waitForFunction((sel) => {
    // The arrival is the hub side's: ask again until it is there.
    const list = document.querySelector(`${sel} .modem-stored`);
    if (list && !list.hidden && list.textContent.includes('Kept on the SIM')) return true;
    [...document.querySelectorAll(`${sel} button`)].find((b) => b.textContent === 'Stored messages').click();
    return false;
  }, { timeout: WAIT, polling: 1000 }, modemCard);
  await waitText(page, `${modemCard} .modem-stored`, '+213555000111');
  await accessible(page, 'modems');
  await shoot(page, 'modems');
  const storedDelete = `${modemCard} .modem-stored li .btn-danger`;
  await page.click(storedDelete);
  await waitText(page, storedDelete, 'Really delete?');
  await page.click(storedDelete);
  await waitText(page, `${modemCard} .modem-out`, 'No messages stored');

  step('pair a phone');
  await go(page, '#/pair', '#pair-title');
  await page.type('#pair-name', PAIRED_NAME);
  await page.click('#pair-form button[type=submit]');
  await page.waitForFunction(() => /^\S{4,}$/.test(document.querySelector('#pair-code').textContent.trim()));
  await page.waitForFunction(() => { const i = document.querySelector('#pair-qr'); return i.complete && i.naturalWidth > 0; });
  const code = await text(page, '#pair-code');
  await accessible(page, 'pair');
  tell(`pair ${code}`);
  await waitText(page, '#pair-result', `Paired: ${PAIRED_NAME} is online`);
  await shoot(page, 'pair');
  await go(page, '#/fleet', '#fleet-title');
  await page.waitForFunction(
    (name) => [...document.querySelectorAll('#devices .card')].some((c) => c.dataset.name === name && c.dataset.online === 'true'),
    {},
    PAIRED_NAME,
  );

  step('a webhook to a receiver of this script');
  const received = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => { received.push(body); res.writeHead(200).end('ok'); });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  await go(page, '#/webhooks', '#webhooks-title');
  await page.type('#webhook-url', hookUrl);
  await page.type('#webhook-types', 'key.*');
  await page.click('#webhook-create button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#webhook-secret-value').textContent.trim().length > 10);
  await waitText(page, '#webhooks', hookUrl);
  await accessible(page, 'webhooks');
  await shoot(page, 'webhooks');

  step('create a key, then revoke it');
  await go(page, '#/keys', '#keys-title');
  await page.type('#key-name', 'console-key');
  await page.click('#key-create button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#key-secret-value').textContent.trim().length > 10);
  const secret = await text(page, '#key-secret-value');
  const defaults = await page.$$eval('#key-scopes input:checked', (ns) => ns.map((n) => n.value));
  assert(defaults.join(' ') === 'messages:send messages:read', `the form's scopes after a creation: ${defaults}`);
  const before = await fetch(`${HUB}/api/sms?limit=1`, { headers: { 'X-API-Key': secret } });
  assert(before.status === 200, `the new key is refused: ${before.status}`);
  const row = '#keys tr[data-name="console-key"]';
  await waitText(page, `${row} .pill`, 'active');
  await accessible(page, 'keys');
  await shoot(page, 'keys');
  await page.click(`${row} button`);
  await waitText(page, `${row} button`, 'Really revoke?');
  await page.click(`${row} button`);
  await waitText(page, `${row} .pill`, 'revoked');
  const after = await fetch(`${HUB}/api/sms?limit=1`, { headers: { 'X-API-Key': secret } });
  assert(after.status === 401, `the revoked key still works: ${after.status}`);

  step("the webhook's deliveries show it, and a replay");
  // The list is redrawn as it is read: follow the link in the page, not a handle to it.
  await page.evaluate(() => { location.hash = document.querySelector('#webhooks a').getAttribute('href'); });
  await page.waitForFunction(
    () => [...document.querySelectorAll('#deliveries tr')].some((r) => r.dataset.event === 'key.revoked' && r.textContent.includes('delivered')),
    { timeout: WAIT },
  );
  assert(received.some((b) => b.includes('key.revoked')), `the receiver got ${JSON.stringify(received)}`);
  await page.click('#webhook-replay button[type=submit]');
  await waitText(page, '#webhook-replay-result', 'Replaying');
  await accessible(page, 'webhook');
  await shoot(page, 'webhook');
  receiver.close();

  step('add a user, change their role, reset their password, delete them');
  await go(page, '#/users', '#users-title');
  await waitText(page, '#users', USERNAME);
  await page.type('#user-name', 'console-user');
  await page.type('#user-password', 'console-pass-1');
  await page.select('#user-role', 'viewer');
  await page.click('#user-create button[type=submit]');
  const userRow = '#users tr[data-username="console-user"]';
  await page.waitForSelector(userRow);
  assert(await page.$eval(`${userRow} select.user-role`, (n) => n.value) === 'viewer', 'the new user is not a viewer');
  await waitText(page, `${userRow}`, 'never');
  await accessible(page, 'users');
  await shoot(page, 'users');
  await page.select(`${userRow} select.user-role`, 'operator');
  await waitText(page, `${userRow} .user-note`, 'Role changed to operator');
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.role === 'operator', {}, userRow);
  const asOperator = await fetch(`${HUB}/api/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'console-user', password: 'console-pass-1' }),
  });
  const operatorBody = await asOperator.json();
  assert(asOperator.status === 200 && operatorBody.role === 'operator', `the user signs in as ${JSON.stringify(operatorBody)}`);
  await page.type(`${userRow} .user-password input`, 'console-pass-2');
  await page.click(`${userRow} .user-password button`);
  await waitText(page, `${userRow} .user-note`, 'Password reset');
  const oldPassword = await fetch(`${HUB}/api/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'console-user', password: 'console-pass-2' }),
  });
  assert(oldPassword.status === 200, `the new password is refused: ${oldPassword.status}`);
  await page.click(`${userRow} .btn-danger`);
  await waitText(page, `${userRow} .btn-danger`, 'Really delete?');
  await page.click(`${userRow} .btn-danger`);
  await page.waitForFunction((sel) => !document.querySelector(sel), {}, userRow);
  const users = await (await fetch(`${HUB}/api/users`, { headers: { 'X-API-Key': API_KEY } })).json();
  assert(!users.users.some((u) => u.username === 'console-user'), `still listed: ${JSON.stringify(users)}`);

  step('the audit log shows it');
  await go(page, '#/audit', '#audit-title');
  await waitText(page, '#audit', 'key.revoke');
  await waitText(page, '#audit', 'user.remove');
  await waitText(page, '#audit', 'device.rest');
  await accessible(page, 'audit');
  await shoot(page, 'audit');

  step('a phone that goes silent goes offline within the heartbeat window');
  await go(page, '#/fleet', '#fleet-title');
  // The sparklines are there (their lines come once the hub has sampled the phones and the
  // page read them again, at most a minute later: too slow a wait for this run to depend on).
  await page.waitForSelector('#devices .card .sim-spark', { timeout: WAIT });
  tell('kill');
  const killed = Date.now();
  await page.waitForFunction(
    (name) => [...document.querySelectorAll('#devices .card')].some((c) => c.dataset.name === name && c.dataset.online === 'false' && c.textContent.includes('Offline since')),
    { timeout: WAIT },
    SILENT_NAME,
  );
  const took = (Date.now() - killed) / 1000;
  console.error(`   offline after ${took} s`);
  // Three heartbeats of 2 s of silence, then the event, with room for a loaded machine.
  assert(took < 20, `the silent phone was shown offline only after ${took} s`);
  await shoot(page, 'fleet-offline');

  step('a message for the offline phone waits in the queue, says why, and is cancelled');
  await go(page, '#/send', '#send-title');
  await page.evaluate((name) => {
    const select = document.querySelector('#send-device');
    const option = [...select.options].find((o) => o.textContent.startsWith(name));
    select.value = option.value;
  }, SILENT_NAME);
  await page.$eval('#send-to', (n) => { n.value = ''; }); // the form keeps the last recipients
  await page.type('#send-to', '+14155552672');
  await page.type('#send-text', 'For the silent phone');
  await page.click('#send-form button[type=submit]');
  await waitText(page, '#send-result', '+14155552672');
  const waitingId = decodeURIComponent((await page.$eval('#send-result a', (a) => a.getAttribute('href'))).split('/').pop());
  await go(page, '#/queue', '#queue-title');
  await page.waitForFunction(
    (mid, name) => { const li = document.querySelector(`#queue-groups li[data-id="${mid}"]`); return li && li.closest('.queue-group').dataset.reason.includes(`${name}, which is offline`); },
    {},
    waitingId,
    SILENT_NAME,
  );
  // The queue's depth over time, drawn as on the charts' view, with its value in words.
  await waitText(page, '#queue-chart figure[data-chart="queue"] li[data-series="queue_depth"]', 'waiting:');
  await waitText(page, '#queue-chart figcaption', 'one point per 1 min');
  await page.select('#queue-window select[name=window]', '24h');
  await page.waitForFunction(() => {
    const caption = document.querySelector('#queue-chart figcaption');
    return caption && !caption.textContent.includes('per 1 min');
  }, { timeout: WAIT });
  await accessible(page, 'queue');
  await shoot(page, 'queue');
  await page.evaluate((mid) => { location.hash = '#/messages/' + mid; }, waitingId);
  await waitText(page, '#message-facts', 'offline');
  await page.waitForSelector('#message-cancel', { visible: true });
  await page.click('#message-cancel');
  await waitText(page, '#message-state', 'cancelled');
  await go(page, '#/queue', '#queue-title');
  await waitText(page, '#queue-empty', 'Nothing waits');

  step('charts: what was sent is counted, and its latency drawn');
  await go(page, '#/charts', '#charts-title');
  await page.waitForFunction(
    () => {
      const li = document.querySelector('figure[data-chart="states"] li[data-series="sent"]');
      const n = li && Number((li.textContent.match(/sent: (\d+) in all/) || [])[1]);
      return n >= 1 && !!document.querySelector('figure[data-chart="latency"] .chart-plot polyline');
    },
    { timeout: WAIT },
  );
  await accessible(page, 'charts');
  await shoot(page, 'charts');

  step("rotate the paired phone's token from its page (it is cut off), delete the silent phone from its page");
  await go(page, '#/fleet', '#fleet-title');
  const paired = `#devices .card[data-name="${PAIRED_NAME}"]`;
  await page.click(`${paired} .card-link`);
  await waitText(page, '#device-title', PAIRED_NAME);
  const rotate = '#device-actions button.rotate';
  await waitText(page, rotate, 'Rotate token');
  await page.click(rotate);
  await waitText(page, rotate, 'Really rotate?');
  await page.click(rotate);
  await waitText(page, '#device-note', 'New token (shown once)');
  await waitText(page, '#device-online', 'offline');
  await go(page, '#/fleet', '#fleet-title');
  await page.waitForSelector(`${paired}[data-online="false"]`);
  const silent = `#devices .card[data-name="${SILENT_NAME}"]`;
  await page.click(`${silent} .card-link`);
  await waitText(page, '#device-title', SILENT_NAME);
  const remove = '#device-actions .btn-danger';
  await page.click(remove);
  await waitText(page, remove, 'Really delete?');
  await page.click(remove);
  await page.waitForFunction(() => location.hash === '#/fleet', { timeout: WAIT });
  await page.waitForFunction((sel) => !document.querySelector(sel), {}, silent);

  step('sign out');
  await page.click('#sign-out');
  await page.waitForSelector('#login-form', { visible: true });
  assert(await page.$eval('#main', (n) => n.hidden), 'the console is still shown after signing out');

  step('a viewer sees and cannot act');
  await page.$eval('#login-user', (n) => { n.value = ''; });
  await page.type('#login-user', VIEWER);
  await page.type('#login-password', PASSWORD);
  await page.keyboard.press('Enter');
  await waitText(page, '#who-role', 'viewer');
  await go(page, '#/fleet', '#fleet-title');
  // The fleet's phones, the paired one and the modem (the silent one was deleted).
  await page.waitForFunction((n) => document.querySelectorAll('#devices .card').length === n, {}, PHONES + 2);
  const nav = await page.$$eval('#nav a', (as) => as.filter((a) => !a.hidden).map((a) => a.textContent));
  assert(JSON.stringify(nav) === JSON.stringify(['Fleet', 'Messages', 'Queue', 'Charts', 'Modems', 'Inbox']), `a viewer's menu: ${nav}`);
  assert((await page.$$('#devices .card button')).length === 0, 'a viewer is offered device actions');
  await go(page, '#/keys', '#missing-title');
  await page.click('#sign-out');
  await page.waitForSelector('#login-form', { visible: true });

  step("the demo's API-key link still works");
  const demo = await (await browser.createBrowserContext()).newPage();
  demo.setDefaultTimeout(WAIT);
  watch(demo, 'demo', []);
  await demo.setViewport({ width: 1280, height: 900 });
  await demo.goto(`${HUB}/#key=${encodeURIComponent(API_KEY)}`, { waitUntil: 'load' });
  await waitText(demo, '#who-role', 'API key');
  await waitText(demo, '#live', 'Live');
  await demo.waitForFunction((name) => [...document.querySelectorAll('#devices .card')].some((c) => c.dataset.name === name), {}, PAIRED_NAME);
  assert(!(await demo.evaluate(() => location.hash.includes('key='))), 'the key stays in the address bar');
  await demo.close();

  assert(problems.length === 0, `problems in the browser:\n${problems.join('\n')}`);
  tell('ok');
} catch (err) {
  console.error(err && err.stack ? err.stack : String(err));
  if (problems.length) console.error(`also seen in the browser:\n${problems.join('\n')}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser.close().catch(() => {});
  // Whatever is still listening (the webhook receiver after a failure) must not keep the
  // process alive.
  process.exit(process.exitCode || 0);
}
