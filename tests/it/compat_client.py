"""capcom6's PyPI client `android-sms-gateway` (4.3.x), unmodified, against a live smshub.

Driven by tests/it/compat_clients.rs, which starts the hub with simulated phones, a user and
a received SMS, and passes: base URL, username, password, an API key, the id of a device
that never connects (its messages stay Pending), the text of the received SMS. Runs a small
HTTP receiver for the webhook and checks its signature as the app documents it: X-Signature
is the hex HMAC-SHA256 of the body followed by X-Timestamp (the client has no verifier).

Exits 0 and prints "ok" when every check passed; else prints what failed and exits 1.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from android_sms_gateway import (
    APIClient,
    DeviceSettings,
    Message,
    MessagesQueryFilter,
    SettingsWebhooks,
    TextMessage,
    TokenRequest,
    Webhook,
)
from android_sms_gateway.enums import HealthStatus, ProcessState, WebhookEvent
from android_sms_gateway.errors import APIError, ForbiddenError, UnauthorizedError

BASE, USER, PASSWORD, API_KEY, IDLE_DEVICE, INBOX_TEXT = sys.argv[1:7]
URL = f"{BASE}/3rdparty/v1"
SIGNING_KEY = "py-signing-key-4242"


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)


def step(name):
    print(f"step: {name}", flush=True)


def expect_status(status, call, what):
    try:
        call()
    except APIError as err:
        check(err.status_code == status, f"{what}: wanted {status}, got {err.status_code}")
        return err
    except requests.HTTPError as err:
        # The client's DELETEs raise requests' own error.
        got = err.response.status_code
        check(got == status, f"{what}: wanted {status}, got {got}")
        return err
    check(False, f"{what}: wanted {status}, the call succeeded")


def wait_for(what, probe, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.1)


# ---- the webhook receiver ----
received = []
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            received.append(
                (body, self.headers.get("X-Signature"), self.headers.get("X-Timestamp"))
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
HOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"

with APIClient(USER, PASSWORD, base_url=URL) as api:
    step("health")
    health = api.health_check()
    check(health.status == HealthStatus.PASS, f"health: {health}")

    step("devices")
    devices = api.list_devices()
    ids = {it.id for it in devices}
    check(IDLE_DEVICE in ids and len(devices) >= 3, f"devices: {devices}")
    check(all(it.name and it.last_seen for it in devices), f"device fields: {devices}")

    step("token")
    token = api.generate_token(TokenRequest(scopes=["messages:read", "messages:list"], ttl=600))
    check(token.token_type == "Bearer" and token.access_token, f"token: {token}")

    step("settings and webhook")
    api.patch_settings(DeviceSettings(webhooks=SettingsWebhooks(signing_key=SIGNING_KEY)))
    settings = api.get_settings()
    check(settings.webhooks and settings.webhooks.signing_key == SIGNING_KEY, f"settings: {settings}")
    hook = api.create_webhook(
        Webhook(id="hook-delivered", url=HOOK_URL, event=WebhookEvent.SMS_DELIVERED)
    )
    check(hook.id == "hook-delivered" and hook.event == WebhookEvent.SMS_DELIVERED, f"hook: {hook}")
    check(any(it.id == "hook-delivered" for it in api.get_webhooks()), "the webhook is listed")

    step("send one")
    single = api.send(
        Message(
            phone_numbers=["+14155552671"],
            text_message=TextMessage(text="Your code is 482913"),
            id="py-single-1",
            sim_number=1,
        )
    )
    check(single.id == "py-single-1", f"id: {single}")
    # The answer shows the state read after the commit: a phone may have taken it already.
    check(
        single.state in (ProcessState.Pending, ProcessState.Processed, ProcessState.Sent),
        f"state: {single}",
    )
    check([it.phone_number for it in single.recipients] == ["+14155552671"], f"recipients: {single}")

    step("repeat: 409")
    expect_status(
        409,
        lambda: api.send(
            Message(
                phone_numbers=["+14155552671"],
                text_message=TextMessage(text="Your code is 482913"),
                id="py-single-1",
                sim_number=1,
            )
        ),
        "the same id again",
    )

    step("send to three, with a TTL")
    numbers = ["+14155552672", "+447911123456", "+4915112345678"]
    multi = api.send(
        Message(phone_numbers=numbers, text_message=TextMessage(text="Shop opens at 9"), ttl=3600)
    )
    check(len(multi.id) > 0 and multi.id != "py-single-1", f"generated id: {multi}")
    check(sorted(it.phone_number for it in multi.recipients) == sorted(numbers), f"recipients: {multi}")

    step("a message that waits: cancel it")
    waiting = api.send(
        Message(
            phone_numbers=["+14155552673"],
            text_message=TextMessage(text="never sent"),
            id="py-cancel",
            device_id=IDLE_DEVICE,
        )
    )
    check(waiting.state == ProcessState.Pending, f"waiting: {waiting}")
    api.cancel_message("py-cancel")
    cancelled = api.get_state("py-cancel")
    check(cancelled.state == ProcessState.Cancelled, f"cancelled: {cancelled}")
    expect_status(409, lambda: api.cancel_message("py-cancel"), "cancelling twice")
    expect_status(404, lambda: api.get_state("no-such-message"), "an unknown id")

    step("bad input: 400")
    expect_status(
        400,
        lambda: api.send(Message(phone_numbers=[], text_message=TextMessage(text="x"))),
        "no recipient",
    )
    expect_status(
        400,
        lambda: api.send(
            Message(phone_numbers=["+14155552671"], text_message=TextMessage(text="x"), ttl=1)
        ),
        "a ttl under 5 s",
    )

    step("states until Delivered, read with the token")
    with APIClient(None, token.access_token, base_url=URL) as reader:
        for message_id, count in (("py-single-1", 1), (multi.id, 3)):
            state = wait_for(
                f"{message_id} Delivered",
                lambda: (lambda it: it if it.state == ProcessState.Delivered else None)(
                    reader.get_state(message_id)
                ),
            )
            check(len(state.recipients) == count, f"recipients: {state}")
            check(all(it.state == ProcessState.Delivered for it in state.recipients), f"{state}")
            check(state.states and "Delivered" in state.states and "Pending" in state.states, f"{state}")
            check(state.device_id, f"device: {state}")
        expect_status(
            403,
            lambda: reader.send(
                Message(phone_numbers=["+14155552671"], text_message=TextMessage(text="no"))
            ),
            "sending with a read-only token",
        )

    step("list")
    listed = api.get_messages()
    listed_ids = [it.id for it in listed]
    for message_id in ("py-single-1", multi.id, "py-cancel"):
        check(message_id in listed_ids, f"{message_id} in {listed_ids}")
    delivered = api.get_messages(query=MessagesQueryFilter(state="Delivered"))
    check(
        {it.id for it in delivered} >= {"py-single-1", multi.id}
        and all(it.state == ProcessState.Delivered for it in delivered),
        f"filtered: {delivered}",
    )

    step("inbox")
    inbox = api.list_inbox_messages()
    check(any(it.content_preview == INBOX_TEXT and it.message_type == "SMS" for it in inbox), f"inbox: {inbox}")

    step("the signed webhook")

    def delivered_hook():
        with lock:
            for body, signature, timestamp in received:
                envelope = json.loads(body)
                if envelope["payload"].get("messageId") == "py-single-1":
                    return body, signature, timestamp, envelope
        return None

    body, signature, timestamp, envelope = wait_for("the sms:delivered webhook", delivered_hook)
    wanted = hmac.new(SIGNING_KEY.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    check(hmac.compare_digest(wanted, signature or ""), f"signature {signature} != {wanted}")
    check(abs(time.time() - int(timestamp)) < 300, f"timestamp {timestamp}")
    check(envelope["event"] == "sms:delivered" and envelope["webhookId"] == "hook-delivered", f"{envelope}")
    check(envelope["deviceId"] and envelope["id"], f"envelope: {envelope}")
    check(envelope["payload"]["phoneNumber"] == "+14155552671", f"payload: {envelope}")
    check("deliveredAt" in envelope["payload"], f"payload: {envelope}")
    api.delete_webhook("hook-delivered")
    check(not api.get_webhooks(), "the webhook is gone")

    step("the other prefix, an API key as the password and as a bearer token")
    with APIClient(USER, PASSWORD, base_url=f"{BASE}/api/3rdparty/v1") as other:
        check(other.get_state("py-single-1").state == ProcessState.Delivered, "/api/3rdparty/v1")
    with APIClient("apikey", API_KEY, base_url=URL) as keyed:
        check(len(keyed.list_devices()) >= 3, "an API key as the Basic password")
    with APIClient(None, API_KEY, base_url=URL) as bearer:
        check(len(bearer.list_devices()) >= 3, "an API key as a bearer token")
        expect_status(
            403,
            lambda: bearer.generate_token(TokenRequest(scopes=["messages:send"])),
            "a token for an API key",
        )
    with APIClient(USER, "wrong-password", base_url=URL) as wrong:
        try:
            wrong.list_devices()
            check(False, "a wrong password was taken")
        except UnauthorizedError:
            pass

    step("remove a device")
    api.remove_device(IDLE_DEVICE)
    check(IDLE_DEVICE not in {it.id for it in api.list_devices()}, "the device is gone")

print("ok", flush=True)
