// The fleet view: summary tiles (`GET /api/stats`) and a card per device (devices.js),
// redrawn when the event stream says something changed; filters by kind, status, operator and a
// search over names, operators and numbers; sorts; how much of each cap its SIMs used, its
// sent and failed in all and in the last 24 h, and the device actions an operator may take
// (actions.js: rest or unrest it, its sending limits, rotate its token, delete). Each SIM
// has a sparkline of its signal over the last 6 h (history.js).

import { $, h, setText, setAttr, setClass, show, setWidth, showError, reconcile, clearList, debounce, num, ago, clock, fullTime } from './dom.js';
import * as api from './api.js';
import * as actions from './actions.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';
import { can } from './session.js';
import * as history from './history.js';

const ICONS = {
  android: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><rect x="6" y="2.5" width="12" height="19" rx="2.5"/><path d="M10.5 18.5h3"/></svg>',
  modem: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><rect x="7" y="8" width="10" height="13.5" rx="2"/><path d="M9 8V3.5h6V8"/><path d="M10.5 5.5h0M13.5 5.5h0"/><path d="M10 17.5h4"/></svg>',
  bolt: '<svg class="bolt" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M13.5 2 4 14h7l-1.5 8L20 10h-7z"/></svg>',
};

function icon(name) {
  const t = document.createElement('template');
  t.innerHTML = ICONS[name]; // constant markup, never data
  return t.content.firstChild;
}

const NET = { lte: 'LTE', nr: '5G', '5g': '5G', nsa: '5G', umts: '3G', hspa: '3G', 'hspa+': 'H+', wcdma: '3G', '3g': '3G', edge: 'EDGE', gprs: 'GPRS', gsm: '2G', '2g': '2G', '4g': 'LTE' };
const netLabel = (n) => (n ? NET[String(n).toLowerCase()] || String(n).toUpperCase() : null);
const CONN = { wifi: 'Wi‑Fi', cellular: 'Cellular', mobile: 'Cellular', ethernet: 'Ethernet', usb: 'USB', serial: 'Serial' };
const connLabel = (c) => (c ? CONN[String(c).toLowerCase()] || String(c) : null);

function signalLevel(sim) {
  if (typeof sim.signal_level === 'number') return Math.max(0, Math.min(4, Math.round(sim.signal_level)));
  const dbm = sim.signal_dbm;
  if (typeof dbm !== 'number') return null;
  if (dbm >= -75) return 4;
  if (dbm >= -85) return 3;
  if (dbm >= -95) return 2;
  if (dbm >= -105) return 1;
  return 0;
}

const ui = {
  box: $('devices'), loading: $('devices-loading'), empty: $('devices-empty'),
  count: $('devices-count'), filters: $('fleet-filters'), error: $('fleet-error'),
};
const tiles = {};
for (const t of document.querySelectorAll('#view-fleet .tile')) tiles[t.dataset.stat] = t;

let active = false;
let unsubscribe = null;
let clockTimer = null;

// ---------- tiles ----------
function setTile(name, value, of) {
  const v = tiles[name].querySelector('.tile-value');
  const key = of == null ? String(value) : value + '/' + of;
  if (v.dataset.k === key) return;
  v.dataset.k = key;
  v.textContent = value;
  if (of != null) v.append(h('span', 'of', ' / ' + of));
}

async function refreshStats() {
  if (!active) return;
  try {
    const stats = await api.get('/api/stats');
    const m = stats.messages || {};
    const d = stats.devices || {};
    setTile('devices', num(d.online), num(d.total));
    setTile('queued', num(m.queued));
    setTile('inflight', num((m.dispatched || 0) + (m.accepted || 0)));
    setTile('sent', num(m.sent));
    setTile('delivered', num(m.delivered));
    setTile('failed', num(m.failed));
    tiles.failed.classList.toggle('alert', (m.failed || 0) > 0);
  } catch { /* the cards say when the hub is unreachable */ }
}
const statsSoon = debounce(refreshStats, 300);

// ---------- cards ----------
function createCard(dev) {
  const card = h('article', 'card');
  const r = (card._r = {});
  const head = h('div', 'card-head');
  r.icon = h('div', 'card-icon');
  const title = h('div', 'card-title');
  const nameRow = h('div', 'card-name-row');
  r.name = h('h2', 'card-name');
  r.nameLink = h('a', 'card-link');
  r.name.append(r.nameLink);
  r.badge = h('span', 'badge');
  r.rested = h('span', 'badge rested', 'Rested');
  r.rested.hidden = true;
  nameRow.append(r.name, r.badge, r.rested);
  r.sub = h('div', 'card-sub');
  title.append(nameRow, r.sub);
  r.presence = h('div', 'presence');
  r.dot = h('span', 'dot');
  r.seen = h('span', 'seen');
  r.presence.append(r.dot, r.seen);
  head.append(r.icon, title, r.presence);

  r.restLine = h('p', 'rest-line');
  r.restLine.hidden = true;

  const batt = h('div', 'row');
  r.battery = h('div', 'battery');
  r.gauge = h('div', 'batt');
  r.gauge.setAttribute('aria-hidden', 'true');
  r.battFill = h('div', 'batt-fill');
  r.gauge.append(r.battFill);
  r.battPct = h('span', 'batt-pct');
  r.bolt = icon('bolt');
  r.battery.append(r.gauge, r.battPct, r.bolt);
  batt.append(h('span', 'row-label', 'Battery'), r.battery);

  r.sims = h('ul', 'sims');
  r.sims.setAttribute('aria-label', 'SIM cards');
  r.noSim = h('div', 'nosim', 'No SIM reported');

  const foot = h('div', 'card-foot');
  const fl = h('div', 'stat');
  r.inflight = h('span', 'stat-value');
  r.meter = h('div', 'meter');
  r.meter.setAttribute('aria-hidden', 'true');
  r.meterFill = h('div', 'meter-fill');
  r.meter.append(r.meterFill);
  fl.append(h('span', 'stat-label', 'In flight'), r.inflight, r.meter);
  // In all (stored), and in the last 24 h (the hub's memory, since its start).
  const sent = h('div', 'stat');
  r.sent = h('span', 'stat-value');
  r.sent24 = h('span', 'stat-sub');
  sent.append(h('span', 'stat-label', 'Sent'), r.sent, r.sent24);
  const failed = h('div', 'stat');
  r.failed = h('span', 'stat-value');
  r.failed24 = h('span', 'stat-sub');
  failed.append(h('span', 'stat-label', 'Failed'), r.failed, r.failed24);
  foot.append(fl, sent, failed);

  r.limits = h('p', 'limits-line');
  r.quota = h('ul', 'quotas');
  r.quota.setAttribute('aria-label', 'Quota used');
  r.actions = h('div', 'card-actions');
  r.notice = h('p', 'card-notice');
  r.notice.hidden = true;
  r.notice.setAttribute('role', 'status');

  card.append(head, r.restLine, batt, r.sims, r.noSim, foot, r.limits, r.quota, r.notice, r.actions);
  return card;
}

// The device's actions (actions.js), built when the user may take them.
function actionsFor(card) {
  const r = card._r;
  const want = can('devices:write') ? 'write' : 'none';
  if (r.actionsFor === want) return;
  r.actionsFor = want;
  r.actions.replaceChildren();
  r.updateActions = want === 'none' ? null : actions.build(r.actions, {
    device: () => ({ id: card.dataset.id, name: card.dataset.name }),
    note: (text) => note(card, text),
  });
}

function note(card, text) {
  setText(card._r.notice, text);
  show(card._r.notice, !!text);
}

function updateCard(card, dev) {
  const r = card._r;
  card.dataset.id = dev.id;
  card.dataset.name = dev.name || dev.id;
  card.dataset.online = dev.online ? 'true' : 'false';
  // HiLink sticks are modems driven over HTTP: the modem icon, their own badge.
  const kind = dev.kind === 'modem' || dev.kind === 'hilink' ? 'modem' : 'android';
  // Phones running capcom6's SMS Gateway app: the phone icon, the app's name.
  const badge =
    dev.kind === 'hilink'
      ? 'HiLink'
      : dev.kind === 'sms-gateway-app'
        ? 'SMS Gateway app'
        : kind === 'modem'
          ? 'Modem'
          : 'Android';
  if (r.kind !== kind || r.badgeText !== badge) {
    r.kind = kind;
    r.badgeText = badge;
    r.icon.replaceChildren(icon(kind));
    setText(r.badge, badge);
  }
  setClass(card, 'card' + (dev.online ? '' : ' offline'));
  // The circuit breaker rests a device that keeps failing: say why and until when.
  const rested = Boolean(dev.rested_until);
  show(r.rested, rested);
  show(r.restLine, rested);
  setText(r.restLine, rested
    ? 'Rested until ' + fullTime(dev.rested_until) + (dev.rest_reason ? ': ' + dev.rest_reason : '')
    : '');
  setText(r.nameLink, dev.name || dev.id);
  setAttr(r.nameLink, 'href', '#/fleet/' + encodeURIComponent(dev.id));
  setAttr(r.name, 'title', 'id ' + dev.id);
  const sub = [dev.model, connLabel(dev.connection), dev.app_version ? 'v' + dev.app_version : null]
    .filter(Boolean).join(' · ');
  setText(r.sub, sub || '—');

  setClass(r.dot, 'dot' + (dev.online ? ' on' : ''));
  const since = dev.online ? dev.connected_at : dev.last_seen_at;
  const when = ago(since);
  setText(r.seen, !since
    ? (dev.online ? 'Online' : 'Never seen')
    : (dev.online ? 'Online since ' : 'Offline since ') + clock(since) + (when ? ' · ' + when : ''));
  setAttr(r.presence, 'title', [
    dev.connected_at ? 'Connected ' + fullTime(dev.connected_at) : null,
    dev.last_seen_at ? 'Last seen ' + fullTime(dev.last_seen_at) : null,
  ].filter(Boolean).join('\n'));

  const b = dev.battery;
  if (b && typeof b.level === 'number') {
    const lvl = Math.max(0, Math.min(100, Math.round(b.level)));
    const low = lvl < 15 && !b.charging;
    setClass(r.battery, 'battery' + (low ? ' low' : lvl < 30 && !b.charging ? ' mid' : ''));
    setWidth(r.battFill, lvl);
    setText(r.battPct, lvl + '%' + (b.charging ? ', charging' : ''));
    show(r.bolt, !!b.charging);
    show(r.gauge, true);
  } else {
    setClass(r.battery, 'battery');
    setWidth(r.battFill, 0);
    setText(r.battPct, kind === 'modem' ? 'n/a (external power)' : 'unknown');
    show(r.bolt, false);
    show(r.gauge, false);
  }

  const sims = (Array.isArray(dev.sims) ? dev.sims : []).map((s) => ({ ...s, device_id: dev.id }));
  reconcile(r.sims, sims, (s) => String(s.slot), createSim, updateSim);
  show(r.sims, sims.length > 0);
  show(r.noSim, sims.length === 0);

  const inFlight = dev.in_flight || 0;
  const max = dev.max_in_flight || 0;
  setText(r.inflight, max ? inFlight + ' / ' + max : String(inFlight));
  setWidth(r.meterFill, max ? (inFlight / max) * 100 : 0);
  setClass(r.meter, 'meter' + (max && inFlight >= max ? ' full' : ''));
  setText(r.sent, num(dev.sent_count));
  setText(r.failed, num(dev.failed_count));
  setClass(r.failed, 'stat-value' + ((dev.failed_count || 0) > 0 ? ' bad' : ''));
  setText(r.sent24, num(dev.sent_24h) + ' in 24 h');
  setText(r.failed24, num(dev.failed_24h) + ' in 24 h');
  actionsFor(card);
  if (r.updateActions) r.updateActions(dev);
  setText(r.limits, actions.describeLimits(dev.limits));
  // How much of each cap its SIMs used (only SIMs with a cap, here).
  const quotaKey = JSON.stringify(dev.quota || []);
  if (r.quotaKey !== quotaKey) {
    r.quotaKey = quotaKey;
    r.quota.replaceChildren(...actions.quotaLines(dev, false));
  }
  show(r.quota, r.quota.childElementCount > 0);
}

function createSim() {
  const li = h('li', 'sim');
  const r = (li._r = {});
  r.slot = h('span', 'sim-slot');
  const main = h('div', 'sim-main');
  r.op = h('span', 'sim-op');
  r.num = h('span', 'sim-num');
  r.label = h('span', 'sim-label');
  main.append(r.op, r.num, r.label);
  r.net = h('span', 'net');
  r.dbm = h('span', 'sim-dbm');
  const NS = 'http://www.w3.org/2000/svg';
  r.bars = document.createElementNS(NS, 'svg');
  r.bars.setAttribute('viewBox', '0 0 22 16');
  r.bars.setAttribute('class', 'bars');
  r.bars.setAttribute('aria-hidden', 'true');
  r.rects = [];
  for (let i = 0; i < 4; i++) {
    const rect = document.createElementNS(NS, 'rect');
    const height = 4 + i * 4;
    rect.setAttribute('x', String(i * 5.5));
    rect.setAttribute('y', String(16 - height));
    rect.setAttribute('width', '4');
    rect.setAttribute('height', String(height));
    rect.setAttribute('rx', '1');
    r.bars.append(rect);
    r.rects.push(rect);
  }
  r.spark = h('div', 'sim-spark');
  li.append(r.slot, main, r.net, r.dbm, r.bars, r.spark);
  return li;
}

function updateSim(li, sim) {
  const r = li._r;
  setText(r.slot, 'SIM ' + ((sim.slot || 0) + 1));
  setText(r.op, sim.operator || 'Unknown operator');
  setText(r.num, sim.phone_number || 'number unknown');
  setText(r.label, sim.label ? 'Label: ' + sim.label : '');
  show(r.label, !!sim.label);
  const registered = sim.registered !== false;
  const net = netLabel(sim.network);
  setText(r.net, registered ? net || '—' : 'No service');
  setClass(r.net, 'net' + (registered ? '' : ' none'));
  show(r.net, !registered || !!net);
  const lvl = registered ? signalLevel(sim) : 0;
  const cls = 'bars l' + (lvl == null ? 0 : lvl);
  if (r.bars.getAttribute('class') !== cls) r.bars.setAttribute('class', cls);
  r.rects.forEach((rect, i) => {
    const want = lvl != null && i < lvl ? 'on' : '';
    if ((rect.getAttribute('class') || '') !== want) rect.setAttribute('class', want);
  });
  setText(r.dbm, typeof sim.signal_dbm === 'number' ? sim.signal_dbm + ' dBm' : '— dBm');
  const values = history.signalValues(sim.device_id, sim.slot);
  const key = values ? values.join(',') : '';
  if (r.sparkKey !== key) {
    r.sparkKey = key;
    r.spark.replaceChildren(...(values ? [history.signalSpark(values, sim.slot || 0)] : []));
  }
}

// ---------- filters and sort ----------
function filtered(list) {
  const f = new FormData(ui.filters);
  const kind = f.get('kind');
  const online = f.get('online');
  const operator = f.get('operator');
  const q = String(f.get('q') || '').trim().toLowerCase();
  const sort = f.get('sort');
  const out = list.filter((d) =>
    (!kind || d.kind === kind) &&
    (!online || (online === 'online') === !!d.online) &&
    (!operator || (d.sims || []).some((s) => s.operator === operator)) &&
    (!q || [d.name, d.id, d.model, ...(d.sims || []).flatMap((s) => [s.operator, s.phone_number])]
      .some((v) => v && String(v).toLowerCase().includes(q))));
  const byName = (a, b) => String(a.name || '').localeCompare(String(b.name || ''), undefined, { numeric: true }) || String(a.id).localeCompare(String(b.id));
  const battery = (d) => (d.battery && typeof d.battery.level === 'number' ? d.battery.level : 101);
  const orders = {
    name: byName,
    status: (a, b) => (b.online ? 1 : 0) - (a.online ? 1 : 0) || byName(a, b),
    battery: (a, b) => battery(a) - battery(b) || byName(a, b),
    failed: (a, b) => (b.failed_count || 0) - (a.failed_count || 0) || byName(a, b),
    load: (a, b) => (b.in_flight || 0) - (a.in_flight || 0) || byName(a, b),
  };
  return out.sort(orders[sort] || orders.status);
}

/** The operator filter offers every operator a SIM of the fleet reports (the choice kept). */
function fillOperators(list) {
  const select = ui.filters.elements.operator;
  const names = [...new Set(list.flatMap((d) => (d.sims || []).map((s) => s.operator)).filter(Boolean))]
    .sort((a, b) => a.localeCompare(b));
  const key = names.join('\n');
  if (select.dataset.names === key) return;
  select.dataset.names = key;
  const chosen = select.value;
  select.replaceChildren(h('option', null, 'All'), ...names.map((name) => h('option', null, name)));
  select.options[0].value = '';
  select.value = names.includes(chosen) ? chosen : '';
}

function render(list, error) {
  if (!active || (!error && !devices.isLoaded())) return;
  showError(ui.error, error ? 'Could not read the devices: ' + error.message : null);
  if (error && !list.length) return;
  fillOperators(list);
  const shown = filtered(list);
  reconcile(ui.box, shown, (d) => d.id, createCard, updateCard);
  // The sparklines: reread at most once a minute each, redrawn when they come.
  history.signals(shown.map((d) => d.id), () => { if (active) render(devices.list(), null); });
  show(ui.loading, false);
  show(ui.empty, shown.length === 0);
  const online = list.filter((d) => d.online).length;
  setText(ui.count, list.length
    ? online + ' of ' + list.length + ' online' + (shown.length !== list.length ? ' · ' + shown.length + ' shown' : '')
    : '');
}

ui.filters.addEventListener('submit', (ev) => ev.preventDefault());
ui.filters.addEventListener('input', () => render(devices.list(), null));

onEvent((event) => {
  if (active && (event.type.startsWith('message.') || event.type.startsWith('device.'))) statsSoon();
});

/** Forgets the cards (signing out: the next user may see and do other things). */
export function reset() {
  clearList(ui.box);
  history.forget();
  show(ui.loading, true);
  show(ui.empty, false);
  setText(ui.count, '');
}

export const view = {
  enter() {
    active = true;
    unsubscribe = devices.subscribe(render);
    render(devices.list(), null);
    devices.refresh();
    refreshStats();
    // "since 3 min" moves on without an event.
    clockTimer = setInterval(() => render(devices.list(), null), 10000);
  },
  leave() {
    active = false;
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
    clearInterval(clockTimer);
  },
};
