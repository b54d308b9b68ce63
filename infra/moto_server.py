#!/usr/bin/env python3
"""Local DynamoDB and SQS for tests: moto's server, one request at a time.

moto's own `moto_server` serves requests on several threads; its DynamoDB backend
does not lock around a condition check and the write that depends on it, so two
concurrent conditional writes could both succeed, and its SQS backend could hand one
message to two concurrent receivers. One request at a time makes each request atomic,
as AWS's are. The one exception is an SQS long poll (ReceiveMessage with
WaitTimeSeconds): it gives up the lock while it waits, as otherwise it would stall
every other request, including the SendMessage it is waiting for.

Prints `READY <port>` on stdout once listening (with `--port 0` the OS picks the port).
With `--exit-on-stdin-eof` it exits when its stdin closes, so a test process that
dies (or never reaps it) cannot leave it running.
"""

import argparse
import logging
import os
import signal
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="exit when stdin reaches end of file (the parent closed it or died)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log every request to stderr"
    )
    args = parser.parse_args()

    # Imported after parsing so `--help` works without moto installed.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Held by each request from start to end, except while an SQS long poll waits.
    serial = threading.Lock()
    from moto.sqs.models import Queue

    wait_for_messages = Queue.wait_for_messages

    def wait_unlocked(self, timeout):
        serial.release()
        try:
            wait_for_messages(self, timeout)
        finally:
            serial.acquire()

    Queue.wait_for_messages = wait_unlocked

    def stop(_signum, _frame):
        # os._exit: serve_forever's select loop would otherwise swallow a SystemExit
        # raised between requests only after the next poll interval.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    dispatcher = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        # moto builds the whole response body inside the call, so holding the lock
        # for the call covers all of the request's work on the backend's state.
        with serial:
            return dispatcher(environ, start_response)

    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )

    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write(f"READY {server.port}\n")
    sys.stdout.flush()
    # Nothing else goes to stdout: the parent may stop reading it.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    server.serve_forever()


if __name__ == "__main__":
    main()
