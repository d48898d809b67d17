// Small DOM and formatting helpers shared by the views. Data is always inserted with
// textContent or attributes, never as markup (the icons in fleet.js are constants).

export const $ = (id) => document.getElementById(id);

/** A new element with a class and text. */
export function h(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text != null) n.textContent = text;
  return n;
}

export function setText(n, v) {
  const s = v == null ? '' : String(v);
  if (n.textContent !== s) n.textContent = s;
}

export function setAttr(n, k, v) {
  if (v == null || v === '') { if (n.hasAttribute(k)) n.removeAttribute(k); }
  else if (n.getAttribute(k) !== String(v)) n.setAttribute(k, v);
}

export function setClass(n, cls) { if (n.className !== cls) n.className = cls; }

// The attribute, not the property: SVG elements have no `hidden` property.
export function show(n, on) { if (n.hasAttribute('hidden') === !!on) n.toggleAttribute('hidden', !on); }

export function setWidth(n, pct) {
  const w = Math.max(0, Math.min(100, pct)).toFixed(1) + '%';
  if (n.style.width !== w) n.style.width = w; // CSSOM: allowed by the CSP, unlike style=""
}

/** Shows `message` in an error line (`null` hides it). */
export function showError(n, message) {
  setText(n, message || '');
  show(n, !!message);
}

/**
 * Keyed in-place list update: creates, updates, reorders and removes children of `box`
 * so that they match `items`, touching only what changed.
 */
export function reconcile(box, items, keyOf, create, update) {
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

/** Empties a list that `reconcile` fills. */
export function clearList(box) {
  box.replaceChildren();
  box._keyed = null;
}

/** A button that asks again before it acts: the first press arms it, the second acts. */
export function confirmButton(label, armed, action) {
  const b = h('button', 'btn btn-danger', label);
  b.type = 'button';
  let timer = null;
  b.addEventListener('click', async () => {
    if (!b.dataset.armed) {
      b.dataset.armed = '1';
      b.textContent = armed;
      timer = setTimeout(() => { delete b.dataset.armed; b.textContent = label; }, 5000);
      return;
    }
    clearTimeout(timer);
    delete b.dataset.armed;
    b.disabled = true;
    try { await action(); } finally { b.disabled = false; b.textContent = label; }
  });
  return b;
}

/**
 * Coalesces calls: `fn` runs `ms` after the first call of a burst, once for the whole
 * burst (events come in bursts; a steady stream still refreshes every `ms`).
 */
export function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

// ---------- formatting ----------
const nf = new Intl.NumberFormat();
export const num = (v) => (typeof v === 'number' ? nf.format(v) : '—');

export function ago(iso) {
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

export function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return time;
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
}

export function fullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** A CSS-safe token of a state name (`delivered`), for its pill's class. */
export const stateClass = (s) => String(s || 'unknown').replace(/[^a-z_-]/gi, '');
