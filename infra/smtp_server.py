#!/usr/bin/env python3
"""SMTP server for tests: aiosmtpd on loopback, storing what it accepts.

Prints `READY <port>` on stdout once listening (with `--port 0` the OS picks the port). Each
accepted message is saved in `--store DIR` as `<n>.eml` (the raw bytes received) and `<n>.json`
(the envelope: `mail_from`, `rcpt_tos`, `authenticated_as`). The `.json` is written first and the
`.eml` renamed into place last, so a reader that sees an `.eml` sees a complete message.

Behaviour is chosen by the recipient's local part, so one server covers every case:
  reject*  -> 550 5.1.1 at RCPT (a permanent failure; nothing stored)
  defer*   -> 451 4.3.0 at RCPT (a temporary failure; nothing stored)
  slow*    -> no answer to RCPT for 30 s (client timeouts)
  drop*    -> the message is stored, then the connection closes before the reply to the
              message data (the client cannot know whether it was accepted)

With `--user NAME:PASSWORD` the server offers AUTH PLAIN/LOGIN (without TLS: loopback only),
accepts those credentials and answers 535 to others; unauthenticated mail is still accepted.

Exits when stdin closes (the test process ended, however it ended) or on SIGTERM.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import threading

REJECT = "550 5.1.1 mailbox unavailable"
DEFER = "451 4.3.0 try again later"


class Handler:
    def __init__(self, store: str) -> None:
        self.store = store
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return REJECT
        if local.startswith("defer"):
            return DEFER
        if local.startswith("slow"):
            await asyncio.sleep(30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        base = os.path.join(self.store, f"{n:06d}")
        user = session.auth_data.login.decode() if session.authenticated else None
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "authenticated_as": user}
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        with open(base + ".eml.partial", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(base + ".eml.partial", base + ".eml")
        if any(r.split("@", 1)[0].lower().startswith("drop") for r in envelope.rcpt_tos):
            server.transport.close()
        return f"250 2.0.0 Ok: queued as {n:06d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--store", required=True, help="folder for received messages")
    parser.add_argument("--user", help="NAME:PASSWORD accepted by AUTH")
    args = parser.parse_args()

    # Imported after parsing so `--help` works without aiosmtpd installed.
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    # aiosmtpd logs every session, and a deprecation warning on each AUTH; tests want errors only.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    os.makedirs(args.store, exist_ok=True)
    handler = Handler(args.store)

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not args.user or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name, _, password = args.user.partition(":")
        ok = auth_data.login.decode() == name and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def factory():
        return SMTP(
            handler,
            # A fixed name: the default looks up this machine's FQDN, which can stall on DNS.
            hostname="localhost",
            enable_SMTPUTF8=True,
            authenticator=authenticator if args.user else None,
            auth_require_tls=False,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(factory, host=args.host, port=args.port))
    port = server.sockets[0].getsockname()[1]

    # os._exit: messages are on disk before their 250, so there is nothing to flush or close.
    loop.add_signal_handler(signal.SIGTERM, lambda: os._exit(0))
    loop.add_signal_handler(signal.SIGINT, lambda: os._exit(0))

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    # Nothing else goes to stdout: the parent may stop reading it.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    loop.run_forever()


if __name__ == "__main__":
    main()
