// Charts of the last hour, six hours or day (`GET /api/series`): messages per step by
// state, submission-to-sent percentiles, the queue's depth and the devices online. Drawn
// as inline SVG (lines, no library; colours come from style.css classes, as the CSP wants);
// each chart says its latest values in words too. Refreshed every 30 s while shown, and
// soon after messages move. `figure` draws one of them for another view (the queue's
// depth on the queue's).

import { $, h, setText, showError, debounce } from './dom.js';
import * as api from './api.js';
import { onEvent } from './stream.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 150;

const ui = {
  form: $('charts-window'),
  grid: $('charts-grid'),
  error: $('charts-error'),
  note: $('charts-note'),
};

const CHARTS = [
  {
    id: 'states', title: 'Messages per step', unit: '',
    series: [
      { key: 'queued', label: 'submitted', cls: 's-queued' },
      { key: 'sent', label: 'sent', cls: 's-sent' },
      { key: 'delivered', label: 'delivered', cls: 's-delivered' },
      { key: 'failed', label: 'failed', cls: 's-failed' },
    ],
  },
  {
    id: 'latency', title: 'Submitted → sent', unit: ' ms',
    series: [
      { key: 'sent_p50_ms', label: 'p50', cls: 's-p50' },
      { key: 'sent_p95_ms', label: 'p95', cls: 's-p95' },
      { key: 'sent_p99_ms', label: 'p99', cls: 's-p99' },
    ],
  },
  { id: 'queue', title: 'Waiting in the queue', unit: '', series: [{ key: 'queue_depth', label: 'waiting', cls: 's-queued' }] },
  { id: 'online', title: 'Devices online', unit: '', series: [{ key: 'devices_online', label: 'online', cls: 's-delivered' }] },
];

let active = false;
let timer = null;

function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  return n;
}

/** One chart: a line per series over the points (a gap where a value is unknown). */
function chart(spec, points, stepS) {
  const figure = h('figure', 'chart');
  figure.dataset.chart = spec.id;
  const values = spec.series.flatMap((s) => points.map((p) => p[s.key]).filter((v) => v != null));
  const max = Math.max(1, ...values);
  const x = (i) => (points.length <= 1 ? WIDTH : (i / (points.length - 1)) * WIDTH);
  const y = (v) => HEIGHT - (v / max) * (HEIGHT - 10);
  const plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'chart-plot', preserveAspectRatio: 'none' });
  plot.setAttribute('aria-label', spec.title);
  plot.append(svg('line', { x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: 'chart-axis' }));
  for (const s of spec.series) {
    let run = [];
    const flush = () => {
      if (run.length > 1) plot.append(svg('polyline', { points: run.join(' '), class: 'chart-line ' + s.cls }));
      else if (run.length === 1) {
        // A lone point: a short tick, so it shows at any width.
        const [px, py] = run[0].split(',').map(Number);
        const from = Math.max(0, px - 8);
        plot.append(svg('polyline', { points: `${from},${py} ${Math.max(px, from + 8)},${py}`, class: 'chart-line chart-tick ' + s.cls }));
      }
      run = [];
    };
    points.forEach((p, i) => {
      const v = p[s.key];
      if (v == null) flush();
      else run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    flush();
  }
  const head = h('div', 'chart-head');
  head.append(h('h2', null, spec.title), h('span', 'muted small', 'max ' + Math.round(max) + spec.unit));
  const legend = h('ul', 'chart-legend');
  const last = points.length ? points[points.length - 1] : {};
  const total = (key) => points.reduce((sum, p) => sum + (p[key] || 0), 0);
  for (const s of spec.series) {
    const li = h('li', s.cls);
    const value = spec.id === 'states' ? total(s.key) + ' in all' : last[s.key] == null ? 'n/a' : last[s.key] + spec.unit + ' in the last point';
    li.dataset.series = s.key;
    li.append(h('span', 'swatch ' + s.cls), document.createTextNode(' ' + s.label + ': ' + value));
    legend.append(li);
  }
  const caption = h('figcaption', 'muted small', `one point per ${stepS / 60} min, oldest left`);
  figure.append(head, plot, legend, caption);
  return figure;
}

/** The chart `id` ('states', 'latency', 'queue', 'online') of a `GET /api/series` answer. */
export function figure(id, series) {
  const spec = CHARTS.find((it) => it.id === id);
  return chart(spec, series.points || [], series.step_s || 60);
}

/** `GET /api/series` over the window chosen in `form` (the last hour when none). */
export function load(form) {
  const window = new FormData(form).get('window') || '1h';
  return api.get('/api/series?window=' + encodeURIComponent(window));
}

async function refresh() {
  if (!active) return;
  try {
    const series = await load(ui.form);
    if (!active) return;
    showError(ui.error, null);
    ui.grid.replaceChildren(...CHARTS.map((spec) => figure(spec.id, series)));
    setText(ui.note, 'Kept in the hub\'s memory since it started; Prometheus (/metrics) keeps the long history.');
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the charts: ' + err.message);
  }
}
const soon = debounce(refresh, 2000);

ui.form.addEventListener('change', refresh);
onEvent((event) => {
  if (active && event.type.startsWith('message.')) soon();
});

export const view = {
  enter() {
    active = true;
    refresh();
    timer = setInterval(refresh, 30000);
  },
  leave() {
    active = false;
    clearInterval(timer);
    timer = null;
  },
};
