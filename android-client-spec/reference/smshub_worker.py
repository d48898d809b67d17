#!/usr/bin/env python3
"""A reference smshub worker for Termux (Android): device protocol v1, all of it.

It turns a phone running Termux and Termux:API into an SMS worker of an smshub hub, and it
is meant to be read beside the spec (android-client-spec/README.md); comments name the
sections. Standard library plus `websockets`.

- Journal (5.2): one JSON file, written to a temporary file, fsync'ed and renamed over the
  old one before the frame that depends on it goes out (10.3-10.5, 10.9).
- Jobs (5.3-5.7): `send` -> journal `accepted` -> `accepted`; `commit` -> journal
  `committed`, then `sending`, then `termux-sms-send`, then the outcome and its report.
- Resume (5.8): `hello.jobs` from the journal; jobs left `committed` are sent at start;
  jobs left `sending` by a killed process end as `failed outcome_unknown`.
- Heartbeats (4.3), status (4.2) from termux-battery-status, termux-telephony-deviceinfo
  and termux-telephony-cellinfo, reconnects with backoff and full jitter (3).
- Incoming SMS (7): termux-sms-list polled; each inbox row gets one UUID, kept in the
  journal, so a restart never reports it twice.

Termux:API's `termux-sms-send` hands the text to Android's SmsManager without a sent or
delivery intent (SmsSendAPI.java in termux/termux-api), so this worker reports `sent` when
the command succeeded and says `delivery_reports: false` in `hello`.

Run: python3 smshub_worker.py --hub wss://hub.example:8443 --device-id ID --token-file FILE
"""

import argparse
import asyncio
import datetime
import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid

import websockets
from websockets.asyncio.client import connect

PROTOCOL = [1]
APP_VERSION = "smshub-reference-worker/1.0"
MAX_FRAME = 64 * 1024  # spec 2.3
TOMBSTONE_S = 7 * 24 * 3600  # spec 5.6, 10.6
SEEN_INCOMING_KEPT = 2000

log = logging.getLogger("smshub-worker")


def now_rfc3339(offset_s=0.0):
    """UTC with a Z and milliseconds (spec 2.3), corrected by the hub's clock (4.4)."""
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_rfc3339(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class Stop(Exception):
    """The hub told the worker to stop reconnecting (spec 2.5, 3)."""


class Journal:
    """The durable state (spec 5.2): jobs, tombstones, the outbox, incoming ids."""

    def __init__(self, path):
        self.path = path
        self.fresh = not os.path.exists(path)
        data = {}
        if not self.fresh:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        # id -> {"job": send frame fields, "state": accepted|committed|sending|outcome,
        #        "outcome": report frame or None}
        self.jobs = data.get("jobs", {})
        # id -> {"outcome": report frame, "until": unix time}
        self.tombstones = data.get("tombstones", {})
        # reports not yet acknowledged, in the order produced (5.6)
        self.outbox = data.get("outbox", [])
        # inbox row key -> incoming id (7: one id per SMS, forever)
        self.incoming = data.get("incoming", {})

    def save(self):
        """Write, fsync, rename, fsync the folder: the state is on disk when this returns."""
        data = {
            "jobs": self.jobs,
            "tombstones": self.tombstones,
            "outbox": self.outbox,
            "incoming": self.incoming,
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        folder = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def add_report(self, frame):
        self.outbox.append(frame)

    def drop_report(self, report_id, kind):
        before = len(self.outbox)
        self.outbox = [
            r for r in self.outbox if not (report_key(r) == (report_id, kind))
        ]
        return len(self.outbox) != before

    def prune(self):
        now = time.time()
        self.tombstones = {k: v for k, v in self.tombstones.items() if v["until"] > now}
        if len(self.incoming) > SEEN_INCOMING_KEPT:
            keys = list(self.incoming)[-SEEN_INCOMING_KEPT:]
            self.incoming = {k: self.incoming[k] for k in keys}


def report_key(frame):
    """(id, kind) of a report, as `ack` names it (5.6)."""
    return frame["id"], frame["type"]


class Termux:
    """The Termux:API commands this worker uses; each returns parsed JSON or None."""

    def __init__(self, timeout_s=20):
        self.timeout_s = timeout_s

    async def run(self, *args, stdin=None):
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None),
                self.timeout_s,
            )
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def json(self, *args):
        try:
            code, out, _ = await self.run(*args)
        except (OSError, asyncio.TimeoutError) as err:
            log.debug("%s: %s", args[0], err)
            return None
        if code != 0:
            return None
        try:
            return json.loads(out) if out.strip() else None
        except ValueError:
            return None


# termux-telephony-deviceinfo's network_type names (TelephonyAPI.java) -> spec 8.1 names.
NETWORK_NAMES = {
    "gsm": "gsm", "gprs": "gprs", "edge": "edge", "umts": "umts", "hdspa": "hspa",
    "hsdpa": "hspa", "hsupa": "hspa", "hspa": "hspa", "hspap": "hspa", "lte": "lte", "nr": "nr",
}


class Worker:
    """One worker: the journal, the open session, the radio."""

    def __init__(self, args, termux=None):
        self.args = args
        self.termux = termux or Termux()
        os.makedirs(args.state_dir, exist_ok=True)
        self.journal = Journal(os.path.join(args.state_dir, "journal.json"))
        self.sims = [int(s) for s in str(args.sims).split(",") if s.strip() != ""]
        self.ws = None
        self.welcomed = asyncio.Event()
        self.clock_offset = 0.0
        self.heartbeat_s = 30
        self.last_sent = time.monotonic()
        self.last_received = time.monotonic()
        self.reported_in_session = set()
        self.running = set()  # ids whose send task runs now
        self.replaced = []  # times of close 4000 (2.5)
        self.last_status = None
        self.last_status_at = 0.0
        self.send_lock = asyncio.Lock()

    # ---- the socket -------------------------------------------------------------------

    async def send_frame(self, frame):
        """Sends one frame if a session is open; False if not."""
        ws = self.ws
        if ws is None:
            return False
        try:
            async with self.send_lock:
                await ws.send(json.dumps(frame, separators=(",", ":")))
            self.last_sent = time.monotonic()
            return True
        except websockets.ConnectionClosed:
            return False

    async def run(self):
        """Keeps a session open while enabled (spec 3)."""
        self.recover()
        await self.baseline_inbox()
        # 5.8.3: a committed job is this worker's on both sides: send it now, connected or not.
        for job_id, entry in list(self.journal.jobs.items()):
            if entry["state"] == "committed":
                self.start_sending(job_id)
        failures = 0
        poller = asyncio.create_task(self.poll_inbox())
        try:
            while True:
                started = None
                try:
                    started = await self.session()
                except Stop:
                    raise
                except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as err:
                    log.info("session ended: %s", err)
                finally:
                    self.ws = None
                    self.welcomed.clear()
                # 3: a session of at least 60 s from welcome resets the count.
                if started is not None and time.monotonic() - started >= 60:
                    failures = 0
                failures += 1
                ceiling = min(self.args.backoff_cap_s, 2 ** (failures - 1))
                wait = random.uniform(0, ceiling)
                log.info("reconnecting in %.1f s", wait)
                await asyncio.sleep(wait)
        finally:
            poller.cancel()

    async def session(self):
        """One session; returns when it ends, with the time of welcome (or None)."""
        url = f"{self.args.hub.rstrip('/')}/ws/device/{self.args.device_id}"
        if url.startswith("http"):
            url = "ws" + url[4:]
        headers = {"Authorization": f"Bearer {self.args.token}"}
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                max_size=MAX_FRAME,
                ping_interval=None,  # liveness is judged by heartbeats (4.3)
                open_timeout=20,
            )
        except websockets.InvalidStatus as err:
            if err.response.status_code == 401:
                raise Stop("the hub refused the token (401): check the device id and token")
            raise
        self.ws = ws
        self.reported_in_session = set()
        self.last_received = time.monotonic()
        welcomed_at = None
        # 4.1: hello first, once; 10.2: nothing else before welcome.
        await self.send_frame(self.hello())
        tasks = []
        try:
            tasks.append(asyncio.create_task(self.keepalive()))
            async for text in ws:
                self.last_received = time.monotonic()
                if isinstance(text, bytes):
                    log.warning("binary frame from the hub ignored")
                    continue
                try:
                    frame = json.loads(text)
                except ValueError:
                    log.warning("a frame that is not JSON ignored")
                    continue
                if not isinstance(frame, dict):
                    log.warning("a frame that is not an object ignored")
                    continue
                if frame.get("type") == "welcome" and welcomed_at is None:
                    welcomed_at = time.monotonic()
                    await self.on_welcome(frame)
                    continue
                await self.on_frame(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
        code = ws.close_code
        log.info("session closed (%s)", code)
        if code in (4001, 4002, 4004):
            raise Stop(f"the hub closed with {code}: not reconnecting (spec 2.5)")
        if code == 4000:
            now = time.monotonic()
            self.replaced = [t for t in self.replaced if now - t < 600] + [now]
            if len(self.replaced) >= 3:
                raise Stop("replaced 3 times in 10 minutes: another client uses these credentials")
        return welcomed_at

    def hello(self):
        jobs = []
        for job_id, entry in self.journal.jobs.items():
            # 5.8.1: accepted -> accepted; committed, sending, outcome -> committed, until
            # the send report is acknowledged (then it is a tombstone).
            phase = "accepted" if entry["state"] == "accepted" else "committed"
            jobs.append({"id": job_id, "phase": phase})
        return {
            "type": "hello",
            "protocol": PROTOCOL,
            "app_version": APP_VERSION,
            "device": {"manufacturer": "Termux", "model": self.args.model, "os": "Android"},
            "sims": [{"slot": slot} for slot in self.sims],
            "capabilities": {
                "max_in_flight": self.args.max_in_flight,
                "multipart": True,
                "delivery_reports": False,
                "incoming": not self.args.no_incoming,
            },
            "jobs": jobs,
        }

    async def on_welcome(self, frame):
        self.heartbeat_s = max(1, int(frame.get("heartbeat_s", 30)))
        server_time = parse_rfc3339(frame.get("server_time", ""))
        if server_time is not None:
            self.clock_offset = server_time - time.time()
        log.info("welcome: protocol %s, heartbeat %s s", frame.get("protocol"), self.heartbeat_s)
        self.welcomed.set()
        # 4.2: status right after welcome; 5.6, 5.8.5: then the whole outbox, in order.
        await self.send_status(force=True)
        for report in list(self.journal.outbox):
            self.reported_in_session.add(report_key(report))
            await self.send_frame(report)
        # 5.8.3: committed jobs are sent as soon as possible.
        for job_id, entry in list(self.journal.jobs.items()):
            if entry["state"] == "committed":
                self.start_sending(job_id)

    async def keepalive(self):
        """Heartbeats and the dead-link check (4.3); status in its own task (4.2)."""
        status = asyncio.create_task(self.status_loop())
        try:
            while True:
                await asyncio.sleep(min(0.2, self.heartbeat_s / 10))
                if not self.welcomed.is_set():
                    continue
                now = time.monotonic()
                if now - self.last_received >= 2 * self.heartbeat_s:
                    log.warning("nothing from the hub for 2 x heartbeat_s: reconnecting")
                    await self.ws.close(1000, "no answer from the hub")
                    return
                # A little early rather than late: the hub counts from its side of the wire.
                due = 0.9 * self.heartbeat_s
                if now - self.last_sent >= due or now - self.last_received >= due:
                    if now - self.last_sent >= min(due, 1):
                        await self.send_frame({"type": "heartbeat"})
        finally:
            status.cancel()

    async def status_loop(self):
        while True:
            await asyncio.sleep(1)
            if self.welcomed.is_set():
                await self.send_status()

    # ---- status -----------------------------------------------------------------------

    async def read_status(self):
        battery = await self.termux.json("termux-battery-status")
        info = await self.termux.json("termux-telephony-deviceinfo") or {}
        cells = await self.termux.json("termux-telephony-cellinfo") or []
        frame = {"type": "status", "sims": [], "connection": self.args.connection}
        if isinstance(battery, dict) and isinstance(battery.get("percentage"), int):
            frame["battery"] = {
                "level": max(0, min(100, battery["percentage"])),
                "charging": battery.get("status") in ("CHARGING", "FULL")
                or battery.get("plugged", "UNPLUGGED") != "UNPLUGGED",
            }
        serving = next((c for c in cells if isinstance(c, dict) and c.get("registered")), None)
        for slot in self.sims:
            sim = {"slot": slot}
            if slot == self.sims[0]:
                # deviceinfo describes the default subscription only.
                network = NETWORK_NAMES.get(str(info.get("network_type", "")).lower())
                if network:
                    sim["network"] = network
                if info.get("network_operator_name"):
                    sim["operator"] = info["network_operator_name"]
                if serving is not None:
                    if isinstance(serving.get("dbm"), int):
                        sim["signal_dbm"] = serving["dbm"]
                    if isinstance(serving.get("level"), int):
                        sim["signal_level"] = max(0, min(4, serving["level"]))
                registered = info.get("sim_state", "ready") == "ready" and bool(
                    info.get("network_operator", "x")
                )
                sim["registered"] = registered
            frame["sims"].append(sim)
        return frame

    async def send_status(self, force=False):
        """4.2: on notable change (at most one per 5 s), and at least every 60 s."""
        now = time.monotonic()
        if not force and now - self.last_status_at < 5:
            return
        status = await self.read_status()
        notable = self.last_status is None or self.notable(self.last_status, status)
        if force or notable or now - self.last_status_at >= 60:
            if await self.send_frame(status):
                self.last_status = status
                self.last_status_at = now

    @staticmethod
    def notable(old, new):
        ob, nb = old.get("battery"), new.get("battery")
        if (ob is None) != (nb is None):
            return True
        if ob and nb and (ob["charging"] != nb["charging"] or ob["level"] // 5 != nb["level"] // 5):
            return True
        keys = ("signal_level", "network", "registered")
        return [{k: s.get(k) for k in keys} for s in old["sims"]] != [
            {k: s.get(k) for k in keys} for s in new["sims"]
        ]

    # ---- jobs -------------------------------------------------------------------------

    def in_flight(self):
        """Jobs offered or held whose send outcome is not known yet (6)."""
        return sum(1 for e in self.journal.jobs.values() if e["state"] != "outcome")

    def known_outcome(self, job_id):
        entry = self.journal.jobs.get(job_id)
        if entry and entry["state"] == "outcome":
            return entry["outcome"]
        stone = self.journal.tombstones.get(job_id)
        return stone["outcome"] if stone else None

    async def on_frame(self, frame):
        kind = frame.get("type")
        ids = frame.get("ids")
        if kind in ("commit", "revoke") and not (
            isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        ):
            log.warning("a %s frame without a list of ids ignored", kind)
            return
        reports = frame.get("reports")
        if kind == "ack" and not (isinstance(reports, list) and all(isinstance(r, dict) for r in reports)):
            log.warning("an ack without a list of reports ignored")
            return
        if kind == "send":
            await self.on_send(frame)
        elif kind == "commit":
            await self.on_commit(ids)
        elif kind == "revoke":
            await self.on_revoke(ids)
        elif kind == "ack":
            self.on_ack(reports)
        elif kind == "error":
            log.warning("hub error %s: %s", frame.get("code"), frame.get("message"))
        elif kind == "heartbeat":
            pass
        else:
            # 10.16, 11: unknown frames from the hub are ignored.
            log.info("frame of unknown type %r ignored", kind)

    async def on_send(self, job):
        job_id = job.get("id")
        if not isinstance(job_id, str) or not isinstance(job.get("to"), str):
            log.warning("a send without id or to ignored")
            return
        outcome = self.known_outcome(job_id)
        retry = outcome is not None and outcome["type"] == "failed" and outcome.get("temporary")
        if job_id in self.journal.jobs and not retry:
            # 5.7: accepted, committed, sending, or an outcome: answer accepted again.
            await self.send_frame({"type": "accepted", "ids": [job_id]})
            return
        if outcome is not None and not retry:
            await self.send_frame({"type": "accepted", "ids": [job_id]})
            return
        # 5.3.1: can it take the job?
        reason = None
        valid_until = parse_rfc3339(job.get("valid_until")) if job.get("valid_until") else None
        if valid_until is not None and valid_until < time.time() + self.clock_offset:
            reason = "expired"
        elif job.get("sim_slot") is not None and job["sim_slot"] not in self.sims:
            reason = "sim_unavailable"
        elif self.in_flight() >= self.args.max_in_flight:
            reason = "busy"
        if reason:
            await self.send_frame({"type": "rejected", "ids": [job_id], "reason": reason})
            return
        # 5.3.2-3: journal, durably, then answer.
        self.journal.tombstones.pop(job_id, None)
        fields = ("id", "to", "text", "sim_slot", "delivery_report", "valid_until", "parts")
        self.journal.jobs[job_id] = {
            "job": {k: job[k] for k in fields if k in job},
            "state": "accepted",
            "outcome": None,
        }
        self.journal.save()
        await self.send_frame({"type": "accepted", "ids": [job_id]})

    async def on_commit(self, ids):
        unknown = []
        for job_id in ids:
            entry = self.journal.jobs.get(job_id)
            outcome = self.known_outcome(job_id)
            if entry is not None and entry["state"] == "accepted":
                entry["state"] = "committed"  # 10.4: the commit is recorded first
                self.journal.save()
                self.start_sending(job_id)
            elif entry is not None and entry["state"] == "committed":
                self.start_sending(job_id)  # 5.7: a committed job not yet started
            elif entry is not None and entry["state"] == "sending":
                pass  # its report follows
            elif outcome is not None:
                if outcome["type"] == "failed" and outcome.get("temporary") and entry is None:
                    unknown.append(job_id)  # a retry that was never offered again
                else:
                    await self.rereport(job_id, outcome)  # 5.7: never send it again
            else:
                unknown.append(job_id)
        if unknown:
            await self.send_frame({"type": "rejected", "ids": unknown, "reason": "unknown_job"})

    async def rereport(self, job_id, outcome):
        key = report_key(outcome)
        if key in self.reported_in_session:
            return
        if not any(report_key(r) == key for r in self.journal.outbox):
            self.journal.add_report(outcome)
            self.journal.save()
        self.reported_in_session.add(key)
        await self.send_frame(outcome)

    async def on_revoke(self, ids):
        dropped = []
        for job_id in ids:
            entry = self.journal.jobs.get(job_id)
            # 5.4: accepted or committed and not started: dropped unsent, no tombstone.
            if entry and entry["state"] in ("accepted", "committed") and job_id not in self.running:
                del self.journal.jobs[job_id]
                dropped.append(job_id)
        if dropped:
            self.journal.save()
            await self.send_frame({"type": "rejected", "ids": dropped, "reason": "revoked"})

    def on_ack(self, reports):
        changed = False
        for report in reports:
            job_id, kind = report.get("id"), report.get("report")
            if kind not in ("sent", "delivered", "failed", "incoming"):
                continue  # 5.6, 11: unknown kinds are ignored
            changed |= self.journal.drop_report(job_id, kind)
            entry = self.journal.jobs.get(job_id)
            if kind in ("sent", "failed") and entry and entry["state"] == "outcome":
                # Without delivery reports the send report is final: keep a tombstone (5.6).
                self.journal.tombstones[job_id] = {
                    "outcome": entry["outcome"],
                    "until": time.time() + TOMBSTONE_S,
                }
                del self.journal.jobs[job_id]
                changed = True
        if changed:
            self.journal.prune()
            self.journal.save()

    def start_sending(self, job_id):
        if job_id in self.running:
            return
        self.running.add(job_id)
        task = asyncio.create_task(self.send_sms(job_id))
        task.add_done_callback(lambda _: self.running.discard(job_id))

    async def send_sms(self, job_id):
        """5.5: check valid_until, record sending, hand to the radio, record the outcome."""
        entry = self.journal.jobs.get(job_id)
        if entry is None or entry["state"] != "committed":
            return
        job = entry["job"]
        valid_until = parse_rfc3339(job.get("valid_until")) if job.get("valid_until") else None
        if valid_until is not None and valid_until < time.time() + self.clock_offset:
            await self.finish(job_id, {"type": "failed", "id": job_id, "code": "expired",
                                       "temporary": False, "reason": "valid_until passed"})
            return
        entry["state"] = "sending"  # 10.5: recorded before the SMS API is called
        self.journal.save()
        args = ["termux-sms-send", "-n", job["to"]]
        if job.get("sim_slot") is not None:
            args += ["-s", str(job["sim_slot"])]
        args.append(job.get("text", ""))
        try:
            code, _, err = await self.termux.run(*args)
        except OSError as error:
            # The command did not start: nothing left the phone.
            report = {"type": "failed", "id": job_id, "code": "generic_failure",
                      "temporary": True, "reason": f"termux-sms-send did not start: {error}"}
        except asyncio.TimeoutError:
            report = {"type": "failed", "id": job_id, "code": "outcome_unknown",
                      "temporary": False, "reason": "termux-sms-send did not finish"}
        else:
            if code == 0:
                report = {"type": "sent", "id": job_id, "parts": max(1, int(job.get("parts", 1))),
                          "at": now_rfc3339(self.clock_offset)}
            else:
                # It ran and failed: whether the SMS left cannot be promised (5.5.6).
                report = {"type": "failed", "id": job_id, "code": "generic_failure",
                          "temporary": False,
                          "reason": f"termux-sms-send exit {code}: {err.strip()[:200]}"}
        await self.finish(job_id, report)

    async def finish(self, job_id, report):
        entry = self.journal.jobs.get(job_id)
        if entry is None:
            return
        entry["state"] = "outcome"
        entry["outcome"] = report
        self.journal.add_report(report)  # 10.9: stored before it is sent
        self.journal.save()
        if self.welcomed.is_set():
            self.reported_in_session.add(report_key(report))
            await self.send_frame(report)

    def recover(self):
        """5.8.4: a job left `sending` by a killed process has an unknown fate."""
        changed = False
        for job_id, entry in self.journal.jobs.items():
            if entry["state"] == "sending":
                report = {"type": "failed", "id": job_id, "code": "outcome_unknown",
                          "temporary": False,
                          "reason": "the worker stopped while termux-sms-send ran"}
                entry["state"] = "outcome"
                entry["outcome"] = report
                self.journal.add_report(report)
                changed = True
        self.journal.prune()
        if changed or self.journal.fresh:
            self.journal.save()

    # ---- incoming ---------------------------------------------------------------------

    async def list_inbox(self):
        rows = await self.termux.json("termux-sms-list", "-t", "inbox", "-l", str(self.args.inbox_limit))
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None

    @staticmethod
    def inbox_key(row):
        """An inbox row's identity: its `_id` and a digest of what it says."""
        digest = hashlib.sha256(
            json.dumps([row.get("number") or row.get("address"), row.get("received"), row.get("body")]).encode()
        ).hexdigest()[:16]
        return f"{row.get('_id')}:{digest}"

    async def baseline_inbox(self):
        """On a fresh journal, SMS already in the inbox are history, not news."""
        if not self.journal.fresh or self.args.no_incoming or self.args.forward_existing:
            return
        rows = await self.list_inbox() or []
        for row in rows:
            self.journal.incoming[self.inbox_key(row)] = None
        self.journal.save()

    async def poll_inbox(self):
        if self.args.no_incoming:
            return
        while True:
            rows = await self.list_inbox()
            fresh = []
            for row in rows or []:
                key = self.inbox_key(row)
                if key in self.journal.incoming:
                    continue
                sender = row.get("number") or row.get("address") or ""
                frame = {"type": "incoming", "id": str(uuid.uuid4()), "from": sender,
                         "text": row.get("body") or ""}
                received = self.local_time(row.get("received"))
                if received:
                    frame["received_at"] = received
                self.journal.incoming[key] = frame["id"]  # 7, 10.12: the id is given once
                self.journal.add_report(frame)
                fresh.append(frame)
            if fresh:
                self.journal.save()
                if self.welcomed.is_set():
                    for frame in fresh:
                        self.reported_in_session.add(report_key(frame))
                        await self.send_frame(frame)
            await asyncio.sleep(self.args.poll_s)

    @staticmethod
    def local_time(text):
        """termux-sms-list's "yyyy-MM-dd HH:mm:ss" in the phone's zone -> RFC 3339 UTC."""
        try:
            at = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone()
        except (TypeError, ValueError):
            return None
        at = at.astimezone(datetime.timezone.utc)
        return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="smshub reference worker for Termux")
    p.add_argument("--hub", default=os.environ.get("SMSHUB_HUB"), help="ws(s):// or http(s):// base URL of the hub")
    p.add_argument("--device-id", default=os.environ.get("SMSHUB_DEVICE_ID"))
    p.add_argument("--token", default=os.environ.get("SMSHUB_DEVICE_TOKEN"), help="prefer --token-file or the environment")
    p.add_argument("--token-file", help="a file holding the device token")
    p.add_argument("--state-dir", default=os.path.expanduser("~/.smshub-worker"))
    p.add_argument("--sims", default="0", help="SIM slots to offer, e.g. 0,1")
    p.add_argument("--max-in-flight", type=int, default=4)
    p.add_argument("--poll-s", type=float, default=5.0, help="inbox poll period")
    p.add_argument("--inbox-limit", type=int, default=50)
    p.add_argument("--forward-existing", action="store_true", help="report SMS already in the inbox at first start")
    p.add_argument("--no-incoming", action="store_true")
    p.add_argument("--connection", default="wifi", help="how the phone reaches the hub, for status")
    p.add_argument("--model", default="Termux worker")
    p.add_argument("--backoff-cap-s", type=float, default=60.0, help="spec 3: 60 s")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            args.token = f.read().strip()
    if not (args.hub and args.device_id and args.token):
        p.error("--hub, --device-id and a token (--token-file, SMSHUB_DEVICE_TOKEN) are required")
    return args


def main(worker_class=Worker):
    args = parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    worker = worker_class(args)

    async def run():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await worker.run()
        except asyncio.CancelledError:
            if worker.ws is not None:
                await worker.ws.close(1000, "worker stopping")

    try:
        asyncio.run(run())
    except Stop as why:
        log.error("%s", why)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
