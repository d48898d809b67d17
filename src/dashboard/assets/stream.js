// The live event stream, `GET /api/events` (Server-Sent Events), that every view listens to
// instead of polling. A login session uses the browser's EventSource (the cookie goes with
// it); an API key cannot ride on an EventSource, so the same stream is read with fetch and
// the key in its header. Both resume after a drop from the last event id they saw.
// Must never: keep events (the views refetch what they show from the REST API).

import { current } from './api.js';

// Every event type (`store::EventType`); EventSource delivers named events only to listeners
// of their name.
const TYPES = [
  'message.queued', 'message.dispatched', 'message.accepted', 'message.sent',
  'message.delivered', 'message.failed', 'message.expired', 'message.cancelled',
  'message.retried', 'message.requeued', 'sms.received', 'device.online', 'device.offline',
  'device.rested', 'device.status', 'device.created', 'device.deleted', 'modem.attached',
  'modem.detached', 'key.created', 'key.revoked', 'webhook.disabled',
];
const RETRY_MS = 2000;

const listeners = new Set();
let closeCurrent = null;

/** Calls `fn(event)` for every event (`{id, type, at, message_id?, device_id?, payload?}`). */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function deliver(type, data) {
  let event;
  try { event = JSON.parse(data); } catch { return; }
  event.type = event.type || type;
  for (const fn of listeners) {
    try { fn(event); } catch (err) { console.error(err); }
  }
}

/**
 * Opens the stream; `onState(true)` when it is connected, `onState(false)` while it is
 * not (it retries by itself). Replaces a stream already open.
 */
export function open(onState) {
  close();
  const cred = current();
  if (!cred) return;
  closeCurrent = cred.kind === 'session' ? viaEventSource(onState) : viaFetch(cred.key, onState);
}

export function close() {
  if (closeCurrent) closeCurrent();
  closeCurrent = null;
}

function viaEventSource(onState) {
  let source = null;
  let lastId = null;
  let timer = null;
  function connect() {
    // After a refusal the browser gives up: a new one resumes with `?after=` (it cannot set
    // Last-Event-ID itself).
    source = new EventSource(lastId ? '/api/events?after=' + encodeURIComponent(lastId) : '/api/events');
    source.onopen = () => onState(true);
    source.onerror = () => {
      onState(false);
      // A dropped connection is retried by the browser, with Last-Event-ID; a refused one
      // (a hub shutting down answers 503) is closed for good.
      if (source.readyState === EventSource.CLOSED) timer = setTimeout(connect, RETRY_MS);
    };
    for (const type of TYPES) {
      source.addEventListener(type, (ev) => {
        if (ev.lastEventId) lastId = ev.lastEventId;
        deliver(type, ev.data);
      });
    }
  }
  connect();
  return () => {
    clearTimeout(timer);
    source.close();
  };
}

function viaFetch(key, onState) {
  let stopped = false;
  let ctrl = null;
  let lastId = null;
  let timer = null;
  async function run() {
    ctrl = new AbortController();
    const headers = { 'X-API-Key': key, Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    try {
      const res = await fetch('/api/events', { headers, cache: 'no-store', signal: ctrl.signal });
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let type = 'message';
          let id = null;
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue; // a heartbeat comment
            const sep = line.indexOf(':');
            const field = sep < 0 ? line : line.slice(0, sep);
            const val = sep < 0 ? '' : line.slice(sep + 1).replace(/^ /, '');
            if (field === 'event') type = val;
            else if (field === 'data') data.push(val);
            else if (field === 'id') id = val;
          }
          if (id) lastId = id;
          if (data.length) deliver(type, data.join('\n'));
        }
      }
    } catch {
      // dropped, refused or aborted: retried below unless stopped
    }
    if (stopped) return;
    onState(false);
    timer = setTimeout(run, RETRY_MS);
  }
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (ctrl) ctrl.abort();
  };
}
