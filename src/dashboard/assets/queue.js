// The queue: what waits for a device (`GET /api/sms?state=queued`), oldest first, grouped by
// why it waits (each message's `waiting_reason`, from `GET /api/sms/{id}`, for the oldest
// MAX_EXPLAINED of them). Refreshed when a message or a device changes. Above the groups,
// the queue's depth over the last hour or day (`GET /api/series`, drawn by charts.js),
// reread every 30 s and soon after messages move.

import { $, h, setText, show, showError, debounce, num, ago, fullTime } from './dom.js';
import * as api from './api.js';
import * as devices from './devices.js';
import { onEvent } from './stream.js';
import * as charts from './charts.js';

// Messages asked why they wait, per refresh: one request each.
const MAX_EXPLAINED = 50;

const ui = {
  groups: $('queue-groups'), empty: $('queue-empty'), count: $('queue-count'), error: $('queue-error'),
  window: $('queue-window'), chart: $('queue-chart'), chartError: $('queue-chart-error'),
};

let active = false;
let timer = null;

async function refreshChart() {
  if (!active) return;
  try {
    const series = await charts.load(ui.window);
    if (!active) return;
    showError(ui.chartError, null);
    ui.chart.replaceChildren(charts.figure('queue', series));
  } catch (err) {
    if (active) showError(ui.chartError, 'Could not read the queue over time: ' + err.message);
  }
}
const chartSoon = debounce(refreshChart, 2000);
ui.window.addEventListener('submit', (ev) => ev.preventDefault());
ui.window.addEventListener('change', refreshChart);

async function refresh() {
  if (!active) return;
  try {
    const list = await api.get('/api/sms?state=queued&limit=200');
    const waiting = (list.messages || []).slice().reverse(); // oldest first
    const explained = await Promise.all(waiting.slice(0, MAX_EXPLAINED).map((m) =>
      api.get('/api/sms/' + encodeURIComponent(m.id)).catch(() => m)));
    if (!active) return;
    showError(ui.error, null);
    const groups = new Map();
    waiting.forEach((m, i) => {
      const reason = explained[i] && explained[i].waiting_reason;
      const why = (reason && devices.named(reason)) || (i < MAX_EXPLAINED ? 'waiting for a device' : 'not asked (too many waiting)');
      if (!groups.has(why)) groups.set(why, []);
      groups.get(why).push(m);
    });
    ui.groups.replaceChildren(...[...groups].map(([why, msgs]) => {
      const section = h('section', 'queue-group');
      section.dataset.reason = why;
      section.append(h('h2', null, why + ' — ' + msgs.length));
      const ul = h('ul', 'queue-list');
      for (const m of msgs) {
        const li = h('li');
        li.dataset.id = m.id;
        const a = h('a', 'mono', m.phone_number);
        a.href = '#/messages/' + encodeURIComponent(m.id);
        const since = h('span', 'dim', ' waiting ' + (ago(m.created_at) || '').replace(/ ago$/, ''));
        since.title = 'Queued ' + fullTime(m.created_at);
        li.append(a, since);
        if (m.schedule_at) li.append(h('span', 'dim', ' · scheduled for ' + fullTime(m.schedule_at)));
        ul.append(li);
      }
      section.append(ul);
      return section;
    }));
    show(ui.empty, waiting.length === 0);
    setText(ui.count, list.total ? num(list.total) + ' waiting' : '');
  } catch (err) {
    if (active) showError(ui.error, 'Could not read the queue: ' + err.message);
  }
}
const soon = debounce(refresh, 700);

onEvent((event) => {
  if (active && (event.type.startsWith('message.') || event.type.startsWith('device.'))) soon();
  if (active && event.type.startsWith('message.')) chartSoon();
});

export const view = {
  enter() {
    active = true;
    refresh();
    refreshChart();
    timer = setInterval(refreshChart, 30000);
  },
  leave() {
    active = false;
    clearInterval(timer);
    timer = null;
  },
};
