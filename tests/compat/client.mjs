// capcom6's npm client `android-sms-gateway` (3.0.x), unmodified, against a live smshub.
//
// Driven by tests/it/compat_clients.rs: node client.mjs BASE USER PASSWORD IDLE_DEVICE.
// The client takes an HTTP client from its user (its README shows one over fetch); this one
// throws on a non-2xx answer with the status, and reads an empty body as nothing. It runs a
// small receiver for the webhook and checks X-Signature as the app documents it (the hex
// HMAC-SHA256 of the body followed by X-Timestamp; the client has no verifier).
//
// Prints "ok" and exits 0 when every check passed; else prints what failed and exits 1.

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

import Client, { ProcessState, WebHookEventType } from "android-sms-gateway";

const [BASE, USER, PASSWORD, IDLE_DEVICE] = process.argv.slice(2);
const SIGNING_KEY = "ts-signing-key-2424";

function check(condition, what) {
  if (!condition) {
    console.log(`FAILED: ${what}`);
    process.exit(1);
  }
}

const http = {
  async request(method, url, body, headers) {
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      const error = new Error(`${method} ${url}: ${response.status} ${text}`);
      error.status = response.status;
      throw error;
    }
    return text ? JSON.parse(text) : undefined;
  },
  get(url, headers) {
    return this.request("GET", url, undefined, headers);
  },
  post(url, body, headers) {
    return this.request("POST", url, body, headers);
  },
  put(url, body, headers) {
    return this.request("PUT", url, body, headers);
  },
  patch(url, body, headers) {
    return this.request("PATCH", url, body, headers);
  },
  delete(url, headers) {
    return this.request("DELETE", url, undefined, headers);
  },
};

async function expectStatus(status, call, what) {
  try {
    await call();
  } catch (error) {
    check(error.status === status, `${what}: wanted ${status}, got ${error.status} (${error.message})`);
    return;
  }
  check(false, `${what}: wanted ${status}, the call succeeded`);
}

async function waitFor(what, probe, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---- the webhook receiver ----
const received = [];
const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    received.push({
      body: Buffer.concat(chunks),
      signature: request.headers["x-signature"],
      timestamp: request.headers["x-timestamp"],
    });
    response.writeHead(200).end();
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const hookUrl = `http://127.0.0.1:${server.address().port}/hook`;

const api = new Client(USER, PASSWORD, http, `${BASE}/3rdparty/v1`);

console.log("step: health and devices");
const health = await api.getHealth();
check(health.status === "pass", `health: ${JSON.stringify(health)}`);
const devices = await api.getDevices();
check(devices.some((it) => it.id === IDLE_DEVICE) && devices.length >= 3, `devices: ${JSON.stringify(devices)}`);
check(devices.every((it) => it.name && it.lastSeen && it.createdAt), "device fields");

console.log("step: settings and webhook");
await api.patchSettings({ webhooks: { signingKey: SIGNING_KEY } });
const hook = await api.registerWebhook({ id: "ts-hook", url: hookUrl, event: WebHookEventType.SmsSent });
check(hook.id === "ts-hook" && hook.event === "sms:sent", `hook: ${JSON.stringify(hook)}`);
check((await api.getWebhooks()).some((it) => it.id === "ts-hook"), "the webhook is listed");

console.log("step: send (the deprecated /message), repeat");
const request = {
  id: "ts-1",
  message: "Hello from the npm client",
  phoneNumbers: ["+14155552671"],
  simNumber: 1,
  ttl: 600,
  withDeliveryReport: true,
};
const sent = await api.send(request);
// The answer shows the state read after the commit: a phone may have taken it already.
check(
  sent.id === "ts-1" && [ProcessState.Pending, ProcessState.Processed, ProcessState.Sent].includes(sent.state),
  `sent: ${JSON.stringify(sent)}`,
);
check(sent.recipients.length === 1 && sent.recipients[0].phoneNumber === "+14155552671", "recipient");
await expectStatus(409, () => api.send(request), "the same id again");
const several = await api.send({
  message: "To three",
  phoneNumbers: ["+14155552672", "+447911123456", "+4915112345678"],
});
check(several.id && several.recipients.length === 3, `several: ${JSON.stringify(several)}`);
await expectStatus(400, () => api.send({ message: "x", phoneNumbers: [] }), "no recipient");

console.log("step: states until Delivered");
for (const [id, count] of [["ts-1", 1], [several.id, 3]]) {
  const state = await waitFor(`${id} Delivered`, async () => {
    const it = await api.getState(id);
    return it.state === ProcessState.Delivered ? it : null;
  });
  check(state.recipients.length === count, `recipients: ${JSON.stringify(state)}`);
  check(state.recipients.every((it) => it.state === "Delivered"), `recipients: ${JSON.stringify(state)}`);
}
await expectStatus(404, () => api.getState("no-such-message"), "an unknown id");

console.log("step: the signed webhook");
const delivery = await waitFor("the sms:sent webhook", async () =>
  received.find((it) => JSON.parse(it.body).payload.messageId === "ts-1"),
);
const wanted = createHmac("sha256", SIGNING_KEY)
  .update(Buffer.concat([delivery.body, Buffer.from(delivery.timestamp)]))
  .digest("hex");
check(
  delivery.signature && timingSafeEqual(Buffer.from(wanted), Buffer.from(delivery.signature)),
  `signature ${delivery.signature} != ${wanted}`,
);
const envelope = JSON.parse(delivery.body);
check(envelope.event === "sms:sent" && envelope.webhookId === "ts-hook", `envelope: ${JSON.stringify(envelope)}`);
check(envelope.payload.phoneNumber === "+14155552671" && envelope.payload.sentAt, `payload: ${JSON.stringify(envelope)}`);
await api.deleteWebhook("ts-hook");
check((await api.getWebhooks()).length === 0, "the webhook is gone");

console.log("step: a wrong password, remove a device");
await expectStatus(401, () => new Client(USER, "wrong-password", http, `${BASE}/3rdparty/v1`).getDevices(), "a wrong password");
await api.deleteDevice(IDLE_DEVICE);
check(!(await api.getDevices()).some((it) => it.id === IDLE_DEVICE), "the device is gone");

server.close();
console.log("ok");
