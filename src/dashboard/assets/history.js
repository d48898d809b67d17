// A device's history (`GET /api/devices/{id}/history`), drawn as small inline SVG (no
// library; colours come from style.css classes, as the CSP wants): the fleet cards' signal
// sparklines, one per SIM over the last 6 h (`signals`, read at most once a minute per
// device), and the device page's history section (`section`): its online/offline strip,
// battery, each SIM's signal, and sent and failed per step, each also said in words.
// Must never: draw markup from data (SVG elements are built, text goes in as text).

import { h, setText, setAttr } from './dom.js';
import * as api from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The fleet's sparklines are reread at most this often per device. */
const SPARK_MS = 60000;

function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  return n;
}

/** The device's history over `window` (`1h`, `6h` or `24h`). */
export function load(id, window) {
  return api.get('/api/devices/' + encodeURIComponent(id) + '/history?window=' + encodeURIComponent(window));
}

/**
 * A line over `values` (null: a gap) in a `width`×`height` box scaled to [min, max]; a lone
 * point is a short tick so that it shows.
 */
function line(plot, values, min, max, width, height, cls) {
  const span = Math.max(1, max - min);
  const x = (i) => (values.length <= 1 ? width : (i / (values.length - 1)) * width);
  const y = (v) => height - 1 - ((Math.max(min, Math.min(max, v)) - min) / span) * (height - 2);
  let run = [];
  const flush = () => {
    if (run.length > 1) plot.append(svg('polyline', { points: run.join(' '), class: 'spark-line ' + cls }));
    else if (run.length === 1) {
      const [px, py] = run[0].split(',').map(Number);
      const from = Math.max(0, px - 4);
      plot.append(svg('polyline', { points: `${from},${py} ${Math.max(px, from + 4)},${py}`, class: 'spark-line spark-tick ' + cls }));
    }
    run = [];
  };
  values.forEach((v, i) => {
    if (v == null) flush();
    else run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  flush();
}

/** One SIM's signal per point (null where it reported none). */
function signalOf(points, slot) {
  return points.map((p) => {
    const s = (p.signal || []).find((it) => it.slot === slot);
    return s ? s.dbm : null;
  });
}

/** The slots that reported a signal in `points`. */
function slotsOf(points) {
  const slots = new Set();
  for (const p of points) for (const s of p.signal || []) slots.add(s.slot);
  return [...slots].sort((a, b) => a - b);
}

const lastOf = (values) => { for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i]; return null; };

// Signal is drawn from -120 dBm (nothing) to -50 dBm (excellent).
const DBM_MIN = -120;
const DBM_MAX = -50;

/** A sparkline of one SIM's signal, with its words for screen readers and a tooltip. */
export function signalSpark(values, slot) {
  const plot = svg('svg', { viewBox: '0 0 120 18', class: 'spark', preserveAspectRatio: 'none', role: 'img' });
  const known = values.filter((v) => v != null);
  const words = known.length
    ? `SIM ${slot + 1} signal over 6 h: ${Math.min(...known)} to ${Math.max(...known)} dBm, last ${lastOf(values)} dBm`
    : `SIM ${slot + 1} signal over 6 h: none reported yet`;
  plot.setAttribute('aria-label', words);
  const title = svg('title');
  title.textContent = words;
  plot.append(title);
  line(plot, values, DBM_MIN, DBM_MAX, 120, 18, 's-signal');
  return plot;
}

// ---------- the fleet's sparklines ----------
const sparks = new Map(); // device id → { at, points, pending }

/**
 * Each SIM's signal over the last 6 h for every device of `ids`, from a cache reread at most
 * once a minute; `done()` is called when any was reread. Devices no longer listed are
 * forgotten.
 */
export function signals(ids, done) {
  const now = Date.now();
  for (const id of [...sparks.keys()]) if (!ids.includes(id)) sparks.delete(id);
  for (const id of ids) {
    const entry = sparks.get(id) || { at: 0, points: null, pending: false };
    sparks.set(id, entry);
    if (entry.pending || now - entry.at < SPARK_MS) continue;
    entry.pending = true;
    load(id, '6h').then((body) => {
      entry.points = body.points || [];
      entry.at = Date.now();
      done();
    }, () => { entry.at = Date.now(); }).finally(() => { entry.pending = false; });
  }
}

/** The cached 6 h signal of a device's SIM in `slot` (null: not read yet). */
export function signalValues(id, slot) {
  const entry = sparks.get(id);
  return entry && entry.points ? signalOf(entry.points, slot) : null;
}

/** Forgets the cache (signing out). */
export function forget() { sparks.clear(); }

// ---------- the device page's section ----------

/** A chart of the section: a heading, the plot and a line of words. */
function figure(key, title, plot, words) {
  const f = h('figure', 'chart history-chart');
  f.dataset.history = key;
  const head = h('div', 'chart-head');
  head.append(h('h3', null, title));
  const caption = h('figcaption', 'small', words);
  f.append(head, plot, caption);
  return f;
}

function box(label, height = 60) {
  const cls = 'chart-plot history-plot' + (height < 60 ? ' history-strip' : '');
  const plot = svg('svg', { viewBox: `0 0 600 ${height}`, class: cls, preserveAspectRatio: 'none', role: 'img' });
  plot.setAttribute('aria-label', label);
  return plot;
}

/** The online/offline strip: a block per period, coloured by its state. */
function strip(periods) {
  const total = periods.reduce((n, p) => n + p.minutes, 0) || 1;
  const plot = box('Online and offline over time', 24);
  let x = 0;
  for (const p of periods) {
    const w = (p.minutes / total) * 600;
    const rect = svg('rect', { x: x.toFixed(2), y: 0, width: Math.max(0.5, w).toFixed(2), height: 24, class: 'presence-' + p.state });
    const t = svg('title');
    t.textContent = `${p.state} from ${new Date(p.from).toLocaleTimeString()} to ${new Date(p.until).toLocaleTimeString()}`;
    rect.append(t);
    plot.append(rect);
    x += w;
  }
  const sum = (state) => periods.filter((p) => p.state === state).reduce((n, p) => n + p.minutes, 0);
  const words = `online ${sum('online')} min, offline ${sum('offline')} min, unknown ${sum('unknown')} min (the hub was not running)`;
  return figure('status', 'Online', plot, words);
}

/** Sent and failed per step, as bars side by side. */
function bars(points) {
  const max = Math.max(1, ...points.map((p) => Math.max(p.sent, p.failed)));
  const plot = box('Sent and failed per step');
  const w = 600 / Math.max(1, points.length);
  points.forEach((p, i) => {
    for (const [key, cls, offset] of [['sent', 's-sent', 0], ['failed', 's-failed', 0.5]]) {
      if (!p[key]) continue;
      const height = (p[key] / max) * 58;
      plot.append(svg('rect', { x: (i * w + offset * w).toFixed(2), y: (60 - height).toFixed(2), width: Math.max(0.5, w / 2 - 0.5).toFixed(2), height: height.toFixed(2), class: cls }));
    }
  });
  const sent = points.reduce((n, p) => n + p.sent, 0);
  const failed = points.reduce((n, p) => n + p.failed, 0);
  return figure('traffic', 'Sent and failed', plot, `${sent} sent, ${failed} failed; most in a step ${max}`);
}

/** Replaces `container`'s children with the history's charts. */
export function section(container, history) {
  const points = history.points || [];
  const periods = history.periods || [];
  const battery = points.map((p) => p.battery);
  const batteryPlot = box('Battery level over time');
  line(batteryPlot, battery, 0, 100, 600, 60, 's-battery');
  const known = battery.filter((v) => v != null);
  const charts = [
    strip(periods),
    figure('battery', 'Battery', batteryPlot, known.length
      ? `${Math.min(...known)}% to ${Math.max(...known)}%, last ${lastOf(battery)}%`
      : 'no battery reported (a modem, or not sampled yet)'),
  ];
  const slots = slotsOf(points);
  const signalPlot = box('Signal of each SIM over time');
  const words = [];
  slots.forEach((slot, i) => {
    const values = signalOf(points, slot);
    line(signalPlot, values, DBM_MIN, DBM_MAX, 600, 60, 's-sim' + (i % 2));
    words.push(`SIM ${slot + 1}: last ${lastOf(values)} dBm`);
  });
  charts.push(figure('signal', 'Signal', signalPlot, words.length ? words.join('; ') + ' (from −120 to −50 dBm)' : 'no signal reported'));
  charts.push(bars(points));
  container.replaceChildren(...charts);
  setAttr(container, 'data-step', history.step_s);
  const note = container.parentElement && container.parentElement.querySelector('.history-note');
  if (note) setText(note, `one point per ${Math.round((history.step_s || 60) / 60)} min, oldest left; kept in the hub’s memory since it started`);
}
