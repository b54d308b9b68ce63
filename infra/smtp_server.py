#!/usr/bin/env python3
"""SMTP server for tests: aiosmtpd on loopback, storing what it accepts.

Prints `READY <port>` on stdout once listening (with `--port 0` the OS picks the port). Each
accepted message is saved in `--store DIR` as `<n>.eml` (the raw bytes received) and `<n>.json`
(the envelope: `mail_from`, `rcpt_tos`, `authenticated_as`, and `tls`: whether the session was
encrypted when the message came, by STARTTLS or implicit TLS). The `.json` is written first and
the `.eml` renamed into place last, so a reader that sees an `.eml` sees a complete message.

Behaviour is chosen by the recipient's local part, so one server covers every case:
  reject*  -> 550 5.1.1 at RCPT (a permanent failure; nothing stored)
  defer*   -> 451 4.3.0 at RCPT (a temporary failure; nothing stored)
  slow*    -> no answer to RCPT for 30 s (client timeouts); `slow-rcpt-<n>.txt` in the store
              says a client reached that point
  drop*    -> the message is stored, then the connection closes before the reply to the
              message data (the client cannot know whether it was accepted)

With `--user NAME:PASSWORD` the server offers AUTH PLAIN/LOGIN, accepts those credentials and
answers 535 to others; unauthenticated mail is still accepted. Without TLS, AUTH is offered in
plain text (loopback only).

Transport security (certificate and key are PEM files):
  --starttls CERT KEY  offers STARTTLS and requires it: before it only EHLO, NOOP, QUIT and
                       STARTTLS are accepted (530 otherwise), and AUTH is offered only after it
  --tls CERT KEY       implicit TLS (SMTPS, as on port 465): TLS from the first byte
  --make-cert DIR      writes a test CA (`ca.pem`) and a certificate it signed for `localhost` and
                       127.0.0.1 (`cert.pem`, key `key.pem`) into DIR, then exits; clients trust
                       `ca.pem`. `--cert-names a,b` names other hosts or IP addresses instead.
                       Needs the `cryptography` package.

A client that refuses the certificate during STARTTLS is not logged as an error (tests do that on
purpose); aiosmtpd just closes the connection.

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
            # Tests wait for this marker to know a client is stuck mid-transaction.
            marker = os.path.join(self.store, f"slow-rcpt-{next(self.counter):06d}.txt")
            with open(marker, "w") as f:
                f.write(address)
            await asyncio.sleep(30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        base = os.path.join(self.store, f"{n:06d}")
        user = session.auth_data.login.decode() if session.authenticated else None
        # Set on the transport after STARTTLS, and from the start with implicit TLS.
        tls = server.transport.get_extra_info("ssl_object") is not None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated_as": user,
            "tls": tls,
        }
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        with open(base + ".eml.partial", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(base + ".eml.partial", base + ".eml")
        if any(r.split("@", 1)[0].lower().startswith("drop") for r in envelope.rcpt_tos):
            server.transport.close()
        return f"250 2.0.0 Ok: queued as {n:06d}"

    async def handle_exception(self, error):
        from aiosmtpd.smtp import TLSSetupException

        # A client that refuses our test certificate is what some tests want; aiosmtpd closes the
        # connection. Anything else is logged, with its traceback, as aiosmtpd would.
        if not isinstance(error, TLSSetupException):
            logging.getLogger("mail.log").exception("SMTP session exception")
        return f"500 Error: ({error.__class__.__name__}) {error}"


def make_cert(folder: str, names: list) -> None:
    """A CA and a server certificate it signed, valid for `names` (host names or IP addresses).

    Two certificates rather than one self-signed: TLS clients (rustls/webpki among them) refuse a
    CA certificate presented as the server's own.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    # Back-dated a little: a clock a few minutes behind must not find the certificate "not yet valid".
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "linkcrm tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("linkcrm test CA"))
        .issuer_name(name("linkcrm test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    def alt_name(n: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(n))
        except ValueError:
            return x509.DNSName(n)

    cert = (
        x509.CertificateBuilder()
        .subject_name(name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([alt_name(n) for n in names]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(folder, exist_ok=True)
    pem = serialization.Encoding.PEM
    with open(os.path.join(folder, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(folder, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(folder, "key.pem"), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def server_context(cert: str, key: str):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--store", help="folder for received messages")
    parser.add_argument("--user", help="NAME:PASSWORD accepted by AUTH")
    parser.add_argument(
        "--introspect",
        help="offer AUTH XOAUTH2 too, checking each bearer token at this OAuth 2.0 introspection URL (RFC 7662)",
    )
    security = parser.add_mutually_exclusive_group()
    security.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"), help="offer and require STARTTLS")
    security.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="implicit TLS (SMTPS)")
    security.add_argument("--make-cert", metavar="DIR", help="write a test CA and certificate, then exit")
    parser.add_argument("--cert-names", default="localhost,127.0.0.1", help="for --make-cert: A,B,...")
    args = parser.parse_args()
    if args.make_cert:
        make_cert(args.make_cert, [n.strip() for n in args.cert_names.split(",") if n.strip()])
        return
    if not args.store:
        parser.error("--store is required")

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

    starttls = server_context(*args.starttls) if args.starttls else None
    implicit = server_context(*args.tls) if args.tls else None

    class Server(SMTP):
        """SMTP with SASL XOAUTH2 when --introspect is given (Gmail's and Microsoft's mechanism)."""

    if args.introspect:

        async def auth_XOAUTH2(self, _, arguments):
            import base64
            import urllib.parse
            import urllib.request

            if len(arguments) == 1:
                blob = await self.challenge_auth("")
            else:
                try:
                    blob = base64.b64decode(arguments[1].encode(), validate=True)
                except Exception:
                    await self.push("501 5.5.2 Can't decode base64")
                    return AuthResult(success=False, handled=True)
            fields = dict(
                part.split("=", 1) for part in blob.decode(errors="replace").split("\x01") if "=" in part
            )
            user, bearer = fields.get("user", ""), fields.get("auth", "")
            token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""

            def check():
                data = urllib.parse.urlencode({"token": token}).encode()
                with urllib.request.urlopen(args.introspect, data=data, timeout=10) as r:
                    return json.load(r)

            answer = await asyncio.get_running_loop().run_in_executor(None, check)
            ok = bool(token) and answer.get("active") is True and answer.get("email") == user
            return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b"") if ok else None)

        Server.auth_XOAUTH2 = auth_XOAUTH2

    def factory():
        return Server(
            handler,
            # A fixed name: the default looks up this machine's FQDN, which can stall on DNS.
            hostname="localhost",
            enable_SMTPUTF8=True,
            authenticator=authenticator if (args.user or args.introspect) else None,
            tls_context=starttls,
            require_starttls=starttls is not None,
            # With STARTTLS on offer, AUTH waits for it. aiosmtpd does not count implicit TLS as
            # TLS here, so that mode (encrypted throughout) and plain mode offer AUTH at once.
            auth_require_tls=starttls is not None,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(factory, host=args.host, port=args.port, ssl=implicit)
    )
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
