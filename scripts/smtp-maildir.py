#!/usr/bin/env python3
"""A loopback SMTP server for development and tests: every message it accepts is stored,
as received, in a Maildir (one file per message in MAILDIR/new), and a copy per recipient in
MAILDIR/by-rcpt/<address, lower-case>/new, so that a reader waiting for one subscriber's mail
polls one small folder.

    smtp-maildir.py --port 2525 --maildir .dev/mail [--max-seconds 3600]

Listens on 127.0.0.1 only, accepts any sender and recipient, needs no authentication, and
stops on SIGTERM/SIGINT or after --max-seconds. Prints "ready" once it accepts connections.
Needs aiosmtpd (scripts/smtp-requirements.txt; scripts/lib.sh smtp_venv installs it).
"""

import argparse
import mailbox
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


def open_maildir(path):
    # Maildir(create=True) makes the subfolders only when the folder itself is new.
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return mailbox.Maildir(path, create=False)


def safe_address(address):
    """The recipient as a folder name: lower-case, no path separators or dot-only names."""
    name = address.strip().strip("<>").lower().replace("/", "_").replace("\\", "_")
    return name if name.strip(".") else "_"


class MaildirHandler:
    def __init__(self, path):
        self.path = path
        self.maildir = open_maildir(path)
        self.by_rcpt = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.maildir.add(envelope.original_content)
            for rcpt in envelope.rcpt_tos:
                name = safe_address(rcpt)
                box = self.by_rcpt.get(name)
                if box is None:
                    box = open_maildir(os.path.join(self.path, "by-rcpt", name))
                    self.by_rcpt[name] = box
                box.add(envelope.original_content)
        return "250 OK stored"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--max-seconds", type=float, default=None)
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller = Controller(
        MaildirHandler(args.maildir), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    print("ready", flush=True)
    try:
        stop.wait(args.max_seconds)
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
