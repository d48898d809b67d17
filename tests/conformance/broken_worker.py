#!/usr/bin/env python3
"""A deliberately broken worker for tests/it/conformance.rs: the reference worker, but it
hands a job to the radio as soon as it has accepted it, without waiting for `commit`
(breaking spec 10.4). `smshub conformance` must fail it on `no-send-before-commit`.

PYTHONPATH must hold android-client-spec/reference.
"""

import sys

from smshub_worker import Worker, main


class SendsBeforeCommit(Worker):
    async def on_send(self, job):
        await super().on_send(job)
        entry = self.journal.jobs.get(job.get("id"))
        if entry is not None and entry["state"] == "accepted":
            entry["state"] = "committed"  # the bug: no commit was received
            self.journal.save()
            self.start_sending(job["id"])


if __name__ == "__main__":
    sys.exit(main(SendsBeforeCommit))
