// Hash routing between the console's views: `#/fleet`, `#/fleet/{id}`, `#/messages`, `#/messages/{id}`,
// `#/queue`, `#/charts`, `#/modems`, `#/inbox`, `#/send`, `#/pair`, `#/keys`, `#/users`, `#/webhooks`, `#/webhooks/{id}`, `#/audit`. One view is shown at a time; it is told when it
// is entered (with the id of the path, if any) and left, and focus moves to its heading.

import { $, show } from './dom.js';
import { can } from './session.js';

const views = new Map();
let active = null;

/**
 * Registers a view: `name` (its `#/name`), the scope it needs (or null), and
 * `{ enter(arg), leave() }`. `#/name/arg` opens `detail` when given, else `name`.
 */
export function register(name, scope, view, detail) {
  views.set(name, { name, scope, view, detail, section: $('view-' + name) });
}

function parse(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'fleet', arg: parts[1] || null };
}

/** Shows the view of the current hash; `focus`: move focus to its heading. */
export function route(focus = true) {
  const { name, arg } = parse(location.hash);
  let entry = views.get(name);
  if (entry && arg && entry.detail) entry = views.get(entry.detail);
  if (entry && entry.scope && !can(entry.scope)) entry = null;
  const next = entry || { name: 'missing', view: null, section: $('view-missing') };
  if (active && active.view) active.view.leave();
  for (const it of views.values()) show(it.section, it === next);
  show($('view-missing'), next.name === 'missing');
  active = next;
  for (const link of document.querySelectorAll('#nav a')) {
    const current = link.dataset.view === (views.get(name) ? name : '');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (next.view) next.view.enter(arg);
  const heading = next.section.querySelector('h1');
  if (focus && heading && document.activeElement !== heading) heading.focus({ preventScroll: true });
}

/** Leaves the current view (signing out). */
export function stop() {
  if (active && active.view) active.view.leave();
  active = null;
  for (const it of views.values()) show(it.section, false);
}

/** The name of the view shown. */
export function activeName() { return active ? active.name : null; }

// Other fragments (`#key=…`, handled by app.js) are not views.
window.addEventListener('hashchange', () => { if (active && location.hash.startsWith('#/')) route(); });
