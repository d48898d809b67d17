// Bulk sends from CSV: a header row naming the columns (one of them `phone_number`), a
// template whose `{{column}}` fields each row fills in, then one `POST /api/send-sms` per
// row, as a client would (a few at a time), with a tally of what was accepted and refused.

import { $, h, setText, show, showError } from './dom.js';
import * as api from './api.js';

const AT_ONCE = 4;

const ui = { form: $('bulk-form'), csv: $('bulk-csv'), template: $('bulk-template'), preview: $('bulk-preview'), error: $('bulk-error'), result: $('bulk-result') };

/** Rows of a CSV text (quoted fields with `""` escapes, commas or semicolons). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  const sep = /;/.test(text.split('\n')[0]) && !/,/.test(text.split('\n')[0]) ? ';' : ',';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      if (row.some((f) => f.trim() !== '')) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== '')) rows.push(row);
  return rows;
}

/** The messages the CSV and template make: `{ row, phone_number, message }` or an error. */
function messages() {
  const rows = parseCsv(ui.csv.value);
  if (rows.length < 2) throw new Error('Give a header row and at least one row.');
  const header = rows[0].map((c) => c.trim());
  const at = header.indexOf('phone_number');
  if (at < 0) throw new Error('The header row needs a phone_number column.');
  const template = ui.template.value;
  const fields = [...template.matchAll(/\{\{\s*([\w.-]+)\s*\}\}/g)].map((m) => m[1]);
  const unknown = fields.filter((f) => !header.includes(f));
  if (unknown.length) throw new Error('The template names columns the CSV lacks: ' + [...new Set(unknown)].join(', '));
  return rows.slice(1).map((cells, i) => ({
    row: i + 2,
    phone_number: (cells[at] || '').trim(),
    message: template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, name) => (cells[header.indexOf(name)] || '').trim()),
  }));
}

function preview() {
  try {
    const list = messages();
    setText(ui.preview, list.length + (list.length === 1 ? ' message; the first: ' : ' messages; the first: ') + list[0].message);
    showError(ui.error, null);
  } catch (err) {
    setText(ui.preview, '');
  }
}
ui.csv.addEventListener('input', preview);
ui.template.addEventListener('input', preview);

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  show(ui.result, false);
  let list;
  try { list = messages(); } catch (err) { showError(ui.error, err.message); return; }
  showError(ui.error, null);
  const button = ui.form.querySelector('button[type=submit]');
  button.disabled = true;
  let accepted = 0;
  const refused = [];
  let next = 0;
  const tally = () => setText(ui.result, accepted + ' of ' + list.length + ' accepted' +
    (refused.length ? ', ' + refused.length + ' refused' : '') + (next < list.length ? '…' : '.'));
  show(ui.result, true);
  async function worker() {
    while (next < list.length) {
      const item = list[next++];
      try {
        await api.post('/api/send-sms', { phone_number: item.phone_number, message: item.message });
        accepted++;
      } catch (err) {
        refused.push('row ' + item.row + ': ' + (err.code || err.message));
      }
      tally();
    }
  }
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  tally();
  if (refused.length) {
    const ul = h('ul');
    for (const r of refused) ul.append(h('li', null, r));
    ui.result.append(ul);
  }
  button.disabled = false;
});
