// smshub dashboard — vanilla JS, no dependencies.
// All data is inserted with textContent / attributes; innerHTML is only used
// for the constant icon markup below.
'use strict';
(() => {
  const KEY_STORE = 'smshub.apiKey';
  const FAST_MS = 1000;      // normal poll interval
  const SLOW_MS = 5000;      // back-off while the API is unreachable
  const SMS_MS = 2000;       // recent-messages refresh interval
  const TIMEOUT_MS = 8000;   // per-request timeout

  const ICONS = {
    android: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><rect x="6" y="2.5" width="12" height="19" rx="2.5"/><path d="M10.5 18.5h3"/></svg>',
    modem: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><rect x="7" y="8" width="10" height="13.5" rx="2"/><path d="M9 8V3.5h6V8"/><path d="M10.5 5.5h0M13.5 5.5h0"/><path d="M10 17.5h4"/></svg>',
    bolt: '<svg class="bolt" viewBox="0 0 24 24" fill="currentColor"><path d="M13.5 2 4 14h7l-1.5 8L20 10h-7z"/></svg>',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    banner: $('banner'), live: $('live'), keybar: $('keybar'), keyTail: $('key-tail'),
    gate: $('gate'), form: $('key-form'), input: $('key-input'), error: $('key-error'),
    cancel: $('key-cancel'), app: $('app'),
    devices: $('devices'), devicesLoading: $('devices-loading'), devicesEmpty: $('devices-empty'), devicesCount: $('devices-count'),
    messages: $('messages'), messagesEmpty: $('messages-empty'), messagesCount: $('messages-count'),
  };

  // `state.key` is an API key, or SESSION when a user signed in (the cookie carries it).
  const SESSION = 'session';
  const CSRF_STORE = 'smshub.csrf';

  const state = {
    key: null,
    gen: 0,            // bumped whenever polling is (re)started or stopped
    timer: null,
    failing: false,
    lastSms: 0,
    names: new Map(),  // device id -> name
    devices: [],
  };

  // ---------- small DOM helpers ----------
  function h(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }
  function icon(name) {
    const t = document.createElement('template');
    t.innerHTML = ICONS[name]; // constant markup, never data
    return t.content.firstChild;
  }
  function setText(n, v) {
    const s = v == null ? '' : String(v);
    if (n.textContent !== s) n.textContent = s;
  }
  function setAttr(n, k, v) {
    if (v == null || v === '') { if (n.hasAttribute(k)) n.removeAttribute(k); }
    else if (n.getAttribute(k) !== String(v)) n.setAttribute(k, v);
  }
  function setClass(n, cls) { if (n.className !== cls) n.className = cls; }
  function show(n, on) { if (n.hasAttribute('hidden') === !!on) n.toggleAttribute('hidden', !on); }
  function setWidth(n, pct) {
    const w = Math.max(0, Math.min(100, pct)).toFixed(1) + '%';
    if (n.style.width !== w) n.style.width = w;
  }

  // Keyed in-place list update: creates, updates, reorders and removes
  // children of `box` so that they match `items`, touching only what changed.
  function reconcile(box, items, keyOf, create, update) {
    const map = box._keyed || (box._keyed = new Map());
    const seen = new Set();
    let prev = null;
    for (const item of items) {
      const k = keyOf(item);
      seen.add(k);
      let node = map.get(k);
      if (!node) { node = create(item); map.set(k, node); }
      update(node, item);
      const want = prev ? prev.nextSibling : box.firstChild;
      if (want !== node) box.insertBefore(node, want);
      prev = node;
    }
    for (const [k, node] of map) {
      if (!seen.has(k)) { node.remove(); map.delete(k); }
    }
  }

  // ---------- formatting ----------
  const nf = new Intl.NumberFormat();
  const num = (v) => (typeof v === 'number' ? nf.format(v) : '—');

  function ago(iso) {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isNaN(t)) return null;
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 2) return 'just now';
    if (s < 60) return s + ' s ago';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    const hr = Math.floor(m / 60);
    if (hr < 48) return hr + ' h ago';
    return Math.floor(hr / 24) + ' d ago';
  }

  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '—';
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }

  function fullTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
  }

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

  const NET = { lte: 'LTE', nr: '5G', '5g': '5G', nsa: '5G', umts: '3G', hspa: '3G', 'hspa+': 'H+', wcdma: '3G', '3g': '3G', edge: 'EDGE', gprs: 'GPRS', gsm: '2G', '2g': '2G', '4g': 'LTE' };
  const netLabel = (n) => (n ? NET[String(n).toLowerCase()] || String(n).toUpperCase() : null);

  const CONN = { wifi: 'Wi‑Fi', cellular: 'Cellular', mobile: 'Cellular', ethernet: 'Ethernet', usb: 'USB', serial: 'Serial' };
  const connLabel = (c) => (c ? CONN[String(c).toLowerCase()] || String(c) : null);

  // ---------- API ----------
  class AuthError extends Error {}

  async function api(path) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(path, {
        headers: state.key === SESSION
          ? { Accept: 'application/json' }
          : { 'X-API-Key': state.key, Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
        signal: ctrl.signal,
      });
      if (res.status === 401) throw new AuthError('unauthorized');
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return await res.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------- polling ----------
  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, ms);
  }

  function stopPolling() {
    state.gen++;
    clearTimeout(state.timer);
    state.timer = null;
  }

  function startPolling() {
    stopPolling();
    state.lastSms = 0;
    tick();
  }

  async function tick() {
    state.timer = null;
    if (!state.key || document.hidden) return;
    const gen = state.gen;
    const started = Date.now();
    const wantSms = started - state.lastSms >= SMS_MS - 150;
    try {
      const jobs = [api('/api/devices'), api('/api/stats')];
      if (wantSms) jobs.push(api('/api/sms?limit=15'));
      const [devices, stats, sms] = await Promise.all(jobs);
      if (gen !== state.gen) return;
      renderDevices(devices && Array.isArray(devices.devices) ? devices.devices : []);
      renderStats(stats || {});
      if (wantSms) { state.lastSms = started; renderMessages(sms || {}); }
      setFailing(false);
      showApp();
    } catch (err) {
      if (gen !== state.gen) return;
      if (err instanceof AuthError) {
        stopPolling();
        showGate(state.key === SESSION
          ? 'Your session ended. Sign in again.'
          : 'That key was rejected (401). Paste a valid API key.');
        return;
      }
      setFailing(true);
    }
    if (gen === state.gen) schedule(state.failing ? SLOW_MS : FAST_MS);
  }

  function setFailing(on) {
    state.failing = on;
    show(ui.banner, on);
    setClass(ui.live, 'live ' + (on ? 'bad' : 'ok'));
    setText(ui.live, on ? 'Offline' : 'Live');
    setAttr(ui.live, 'title', on ? 'API unreachable — retrying every 5 s' : 'Updating every second');
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) { clearTimeout(state.timer); state.timer = null; }
    else if (state.key && !ui.app.hidden) startPolling();
  });

  // ---------- summary tiles ----------
  const tiles = {};
  for (const t of document.querySelectorAll('.tile')) tiles[t.dataset.stat] = t;

  function setTile(name, value, of) {
    const tile = tiles[name];
    const v = tile.querySelector('.tile-value');
    const key = of == null ? String(value) : value + '/' + of;
    if (v.dataset.k === key) return;
    v.dataset.k = key;
    v.textContent = value;
    if (of != null) v.append(h('span', 'of', ' / ' + of));
  }

  function renderStats(stats) {
    const m = stats.messages || {};
    const d = stats.devices || {};
    setTile('devices', num(d.online), num(d.total));
    setTile('queued', num(m.queued));
    setTile('inflight', num((m.dispatched || 0) + (m.accepted || 0)));
    setTile('sent', num(m.sent));
    setTile('delivered', num(m.delivered));
    setTile('failed', num(m.failed));
    tiles.failed.classList.toggle('alert', (m.failed || 0) > 0);
  }

  // ---------- device cards ----------
  function createCard(dev) {
    const card = h('article', 'card');
    const r = (card._r = {});

    const head = h('div', 'card-head');
    r.icon = h('div', 'card-icon');
    const title = h('div', 'card-title');
    const nameRow = h('div', 'card-name-row');
    r.name = h('h3', 'card-name');
    r.badge = h('span', 'badge');
    r.rested = h('span', 'badge rested', 'Rested');
    r.rested.hidden = true;
    nameRow.append(r.name, r.badge, r.rested);
    r.sub = h('div', 'card-sub');
    title.append(nameRow, r.sub);
    r.presence = h('div', 'presence');
    r.dot = h('span', 'dot');
    r.seen = h('span');
    r.presence.append(r.dot, r.seen);
    head.append(r.icon, title, r.presence);

    const batt = h('div', 'row');
    r.battery = h('div', 'battery');
    r.gauge = h('div', 'batt');
    const gauge = r.gauge;
    r.battFill = h('div', 'batt-fill');
    gauge.append(r.battFill);
    r.battPct = h('span', 'batt-pct');
    r.bolt = icon('bolt');
    r.battery.append(gauge, r.battPct, r.bolt);
    batt.append(h('span', 'row-label', 'Battery'), r.battery);

    r.sims = h('ul', 'sims');
    r.noSim = h('div', 'nosim', 'No SIM reported');

    const foot = h('div', 'card-foot');
    const fl = h('div', 'stat');
    r.inflight = h('span', 'stat-value');
    r.meter = h('div', 'meter');
    r.meterFill = h('div', 'meter-fill');
    r.meter.append(r.meterFill);
    fl.append(h('span', 'stat-label', 'In flight'), r.inflight, r.meter);
    const sent = h('div', 'stat');
    r.sent = h('span', 'stat-value');
    sent.append(h('span', 'stat-label', 'Sent'), r.sent);
    const failed = h('div', 'stat');
    r.failed = h('span', 'stat-value');
    failed.append(h('span', 'stat-label', 'Failed'), r.failed);
    foot.append(fl, sent, failed);

    card.append(head, batt, r.sims, r.noSim, foot);
    return card;
  }

  function updateCard(card, dev) {
    const r = card._r;
    // HiLink sticks are modems driven over HTTP: the modem icon, their own badge.
    const kind = dev.kind === 'modem' || dev.kind === 'hilink' ? 'modem' : 'android';
    const badge = dev.kind === 'hilink' ? 'HiLink' : kind === 'modem' ? 'Modem' : 'Android';
    if (r.kind !== kind || r.badgeText !== badge) {
      r.kind = kind;
      r.badgeText = badge;
      r.icon.replaceChildren(icon(kind));
      setText(r.badge, badge);
    }
    setClass(card, 'card' + (dev.online ? '' : ' offline'));
    // The circuit breaker rests a device that keeps failing; say why and until when.
    const rested = Boolean(dev.rested_until);
    if (r.rested.hidden === rested) r.rested.hidden = !rested;
    setAttr(r.rested, 'title', rested
      ? 'Gets no new messages until ' + fullTime(dev.rested_until) + (dev.rest_reason ? '\n' + dev.rest_reason : '')
      : '');
    setText(r.name, dev.name || dev.id);
    setAttr(r.name, 'title', (dev.name ? dev.name + '\n' : '') + 'id ' + dev.id);
    const sub = [dev.model, connLabel(dev.connection), dev.app_version ? 'v' + dev.app_version : null]
      .filter(Boolean).join(' · ');
    setText(r.sub, sub || '—');

    setClass(r.dot, 'dot' + (dev.online ? ' on' : ''));
    const seen = ago(dev.last_seen_at);
    setText(r.seen, dev.online
      ? (seen ? 'online · ' + seen : 'online')
      : (seen ? 'last seen ' + seen : 'never seen'));
    setAttr(r.presence, 'title', [
      dev.last_seen_at ? 'Last seen ' + fullTime(dev.last_seen_at) : null,
      dev.connected_at ? 'Connected ' + fullTime(dev.connected_at) : null,
    ].filter(Boolean).join('\n'));

    const b = dev.battery;
    if (b && typeof b.level === 'number') {
      const lvl = Math.max(0, Math.min(100, Math.round(b.level)));
      const low = lvl < 15 && !b.charging;
      setClass(r.battery, 'battery' + (low ? ' low' : lvl < 30 && !b.charging ? ' mid' : ''));
      setWidth(r.battFill, lvl);
      setText(r.battPct, lvl + '%');
      show(r.bolt, !!b.charging);
      show(r.gauge, true);
      setAttr(r.battery, 'title', b.charging ? 'Charging' : 'On battery');
    } else {
      setClass(r.battery, 'battery');
      setWidth(r.battFill, 0);
      setText(r.battPct, kind === 'modem' ? 'n/a (external power)' : 'unknown');
      show(r.bolt, false);
      show(r.gauge, false);
      setAttr(r.battery, 'title', null);
    }

    const sims = Array.isArray(dev.sims) ? dev.sims : [];
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
  }

  function createSim() {
    const li = h('li', 'sim');
    const r = (li._r = {});
    r.slot = h('span', 'sim-slot');
    const main = h('div', 'sim-main');
    r.op = h('span', 'sim-op');
    r.num = h('span', 'sim-num');
    main.append(r.op, r.num);
    r.net = h('span', 'net');
    const NS = 'http://www.w3.org/2000/svg';
    r.bars = document.createElementNS(NS, 'svg');
    r.bars.setAttribute('viewBox', '0 0 22 16');
    r.bars.setAttribute('class', 'bars');
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
    r.barsTitle = document.createElementNS(NS, 'title');
    r.bars.append(r.barsTitle);
    li.append(r.slot, main, r.net, r.bars);
    return li;
  }

  function updateSim(li, sim) {
    const r = li._r;
    setText(r.slot, 'SIM ' + ((sim.slot || 0) + 1));
    setText(r.op, sim.operator || 'Unknown operator');
    setText(r.num, sim.phone_number || 'number unknown');
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
    const dbm = typeof sim.signal_dbm === 'number' ? sim.signal_dbm + ' dBm' : 'dBm unknown';
    setText(r.barsTitle, 'Signal ' + (lvl == null ? '?' : lvl) + '/4 · ' + dbm);
  }

  function renderDevices(devices) {
    state.devices = devices;
    state.names = new Map(devices.map((d) => [d.id, d.name || d.id]));
    const sorted = devices.slice().sort((a, b) =>
      (b.online ? 1 : 0) - (a.online ? 1 : 0) ||
      String(a.name || '').localeCompare(String(b.name || '')) ||
      String(a.id).localeCompare(String(b.id)));
    reconcile(ui.devices, sorted, (d) => d.id, createCard, updateCard);
    show(ui.devicesLoading, false);
    show(ui.devicesEmpty, sorted.length === 0);
    show(ui.devices, sorted.length > 0);
    const online = sorted.filter((d) => d.online).length;
    setText(ui.devicesCount, sorted.length ? online + ' of ' + sorted.length + ' online' : '');
  }

  // ---------- recent messages ----------
  function createRow() {
    const tr = h('tr');
    const r = (tr._r = {});
    r.time = h('td', 'dim');
    r.to = h('td', 'mono');
    r.stateCell = h('td');
    r.pill = h('span', 'pill');
    r.stateCell.append(r.pill);
    r.device = h('td');
    r.parts = h('td', 'num');
    r.err = h('td', 'err');
    tr.append(r.time, r.to, r.stateCell, r.device, r.parts, r.err);
    return tr;
  }

  function updateRow(tr, msg) {
    const r = tr._r;
    setText(r.time, clock(msg.created_at));
    setAttr(r.time, 'title', fullTime(msg.created_at));
    setText(r.to, msg.phone_number || '—');
    setAttr(r.to, 'title', msg.message || null);
    const st = String(msg.state || 'unknown');
    setText(r.pill, st);
    setClass(r.pill, 'pill ' + st.replace(/[^a-z_-]/gi, ''));
    const at = msg.states && msg.states[st];
    setAttr(r.pill, 'title', at ? st + ' at ' + fullTime(at) : null);
    if (msg.device_id) {
      setText(r.device, state.names.get(msg.device_id) || String(msg.device_id).slice(0, 8) + '…');
      setClass(r.device, '');
      setAttr(r.device, 'title', (msg.sim_slot != null ? 'SIM ' + (msg.sim_slot + 1) + ' · ' : '') + msg.device_id);
    } else {
      setText(r.device, '—');
      setClass(r.device, 'dim');
      setAttr(r.device, 'title', null);
    }
    setText(r.parts, msg.parts != null ? msg.parts : '—');
    const e = msg.error;
    setText(r.err, e ? (e.code || 'error') + (e.temporary ? ' (temporary)' : '') : '');
    setAttr(r.err, 'title', e && e.message ? e.message : null);
  }

  function renderMessages(data) {
    const msgs = Array.isArray(data.messages) ? data.messages : [];
    reconcile(ui.messages, msgs, (m) => m.id, createRow, updateRow);
    show(ui.messagesEmpty, msgs.length === 0);
    setText(ui.messagesCount, typeof data.total === 'number' && data.total > 0
      ? 'last ' + msgs.length + ' of ' + num(data.total) : '');
  }

  // ---------- key handling ----------
  function setKey(key) {
    state.key = key || null;
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
    setText(ui.keyTail, !key ? '' : key === SESSION
      ? (localStorage.getItem(CSRF_STORE + '.user') || 'session') : '…' + key.slice(-4));
  }

  function showGate(message) {
    show(ui.app, false);
    show(ui.keybar, false);
    show(ui.live, false);
    show(ui.banner, false);
    show(ui.gate, true);
    show(ui.error, !!message);
    setText(ui.error, message || '');
    show(ui.cancel, !!state.key && !message);
    ui.input.value = '';
    ui.input.focus();
  }

  function showApp() {
    if (!ui.app.hidden) return;
    show(ui.gate, false);
    show(ui.app, true);
    show(ui.keybar, true);
    show(ui.live, true);
  }

  function resetView() {
    show(ui.devicesLoading, true);
    show(ui.devicesEmpty, false);
    ui.devices.replaceChildren();
    ui.devices._keyed = null;
    ui.messages.replaceChildren();
    ui.messages._keyed = null;
  }

  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = ui.input.value.trim();
    if (!key) return;
    if (key !== state.key) resetView();
    setKey(key);
    show(ui.error, false);
    showApp();
    startPolling();
  });

  ui.cancel.addEventListener('click', () => {
    showApp();
    startPolling();
  });

  $('change-key').addEventListener('click', () => { stopPolling(); showGate(); });

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const error = $('login-error');
    show(error, false);
    const username = $('login-user').value.trim();
    const password = $('login-password').value;
    try {
      const res = await fetch('/api/auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify({ username, password }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        const message = body && body.error && body.error.message;
        setText(error, message || 'Sign-in failed (HTTP ' + res.status + ').');
        show(error, true);
        return;
      }
      localStorage.setItem(CSRF_STORE, body.csrf_token || '');
      localStorage.setItem(CSRF_STORE + '.user', body.username || username);
      $('login-password').value = '';
      resetView();
      setKey(SESSION);
      showApp();
      startPolling();
    } catch (err) {
      setText(error, 'The hub did not answer.');
      show(error, true);
    }
  });

  $('sign-out').addEventListener('click', () => {
    if (state.key === SESSION) {
      fetch('/api/auth/logout', {
        method: 'POST',
        headers: { 'X-CSRF-Token': localStorage.getItem(CSRF_STORE) || '' },
        credentials: 'same-origin',
      }).catch(() => {});
      localStorage.removeItem(CSRF_STORE);
      localStorage.removeItem(CSRF_STORE + '.user');
    }
    stopPolling();
    setKey(null);
    resetView();
    showGate();
  });

  function keyFromFragment() {
    const frag = location.hash.replace(/^#/, '');
    if (!frag) return null;
    const key = new URLSearchParams(frag).get('key');
    if (key) history.replaceState(null, '', location.pathname + location.search);
    return key && key.trim() ? key.trim() : null;
  }

  window.addEventListener('hashchange', () => {
    const key = keyFromFragment();
    if (key) { resetView(); setKey(key); showApp(); startPolling(); }
  });

  // ---------- boot ----------
  const initial = keyFromFragment() || localStorage.getItem(KEY_STORE);
  if (initial) { setKey(initial); showApp(); startPolling(); }
  else showGate();
})();
