#!/usr/bin/env python3
"""SMTP client for the end-to-end suite (../e2e_test.go), built on smtplib.

It sends one message and prints one JSON object on stdout describing what
happened, so the Go test can assert on the SMTP reply:

  {"result": "ok", "code": 250, "raw": "<message as sent>", ...}
  {"result": "error", "exception": "SMTPDataError", "code": 451,
   "message": "4.3.0 Temporary failure ...", "raw": "..."}

Exit status: 0 whenever a JSON result was printed (the test decides whether
the reply was the expected one), 2 on bad usage.

Modes: plain (no TLS), starttls (STARTTLS before AUTH/MAIL), ssl (implicit
TLS, SMTP_SSL). The message is either a raw file (--message) or built here as
a multipart/alternative (text + HTML) message with optional attachments and
an RFC 2047 encoded subject.
"""

import argparse
import json
import mimetypes
import os
import smtplib
import socket
import ssl
import sys
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def build_message(args):
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = args.header_from or args.mail_from
    msg["To"] = ", ".join(args.rcpt)
    # policy.SMTP encodes a non-ASCII subject as an RFC 2047 encoded word.
    msg["Subject"] = args.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="e2e.example.com")
    for h in args.header or []:
        name, _, value = h.partition(":")
        msg[name.strip()] = value.strip()
    msg.set_content(args.text)
    if args.html:
        msg.add_alternative(args.html, subtype="html")
    for spec in args.attach or []:
        # path[:content/type]
        path, _, ctype = spec.partition("::")
        if not ctype:
            ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        with open(path, "rb") as f:
            data = f.read()
        msg.add_attachment(data, maintype=maintype, subtype=subtype,
                           filename=os.path.basename(path))
    return msg.as_bytes(policy=policy.SMTP)


def tls_context(args):
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl.create_default_context()
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "ssl"], default="plain")
    p.add_argument("--cafile")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--helo", default="e2e-python.example.com")
    p.add_argument("--mail-from", required=True)
    p.add_argument("--rcpt", action="append", required=True)
    p.add_argument("--message", help="raw RFC 5322 message file to send as is")
    p.add_argument("--header-from")
    p.add_argument("--subject", default="e2e test")
    p.add_argument("--text", default="Hello from the e2e suite.\n")
    p.add_argument("--html")
    p.add_argument("--attach", action="append", help="path[::content/type]")
    p.add_argument("--header", action="append", help='extra header "Name: value"')
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()

    if args.message:
        with open(args.message, "rb") as f:
            raw = f.read()
    else:
        raw = build_message(args)

    out = {"raw": raw.decode("utf-8", "replace")}
    stage = "connect"
    try:
        if args.mode == "ssl":
            smtp = smtplib.SMTP_SSL(args.host, args.port, local_hostname=args.helo,
                                    timeout=args.timeout, context=tls_context(args))
        else:
            smtp = smtplib.SMTP(args.host, args.port, local_hostname=args.helo,
                                timeout=args.timeout)
        try:
            stage = "ehlo"
            smtp.ehlo()
            if args.mode == "starttls":
                stage = "starttls"
                smtp.starttls(context=tls_context(args))
                smtp.ehlo()
            if args.user is not None:
                stage = "auth"
                code, resp = smtp.login(args.user, args.password or "")
                out["auth_code"] = code
            stage = "send"
            refused = smtp.sendmail(args.mail_from, args.rcpt, raw)
            out.update(result="ok", code=250, refused={k: list(v) if isinstance(v, tuple) else v
                                                        for k, v in refused.items()})
            stage = "quit"
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        finally:
            try:
                smtp.close()
            except Exception:
                pass
    except smtplib.SMTPRecipientsRefused as e:
        codes = {k: v[0] for k, v in e.recipients.items()}
        first = next(iter(e.recipients.values()))
        out.update(result="error", exception=type(e).__name__, stage=stage, code=first[0],
                   message=first[1].decode("utf-8", "replace"), recipients=codes)
    except smtplib.SMTPResponseException as e:
        # SMTPDataError, SMTPSenderRefused, SMTPAuthenticationError, ...
        msg = e.smtp_error
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        out.update(result="error", exception=type(e).__name__, stage=stage,
                   code=e.smtp_code, message=str(msg))
    except (smtplib.SMTPException, ssl.SSLError, socket.timeout, OSError) as e:
        out.update(result="error", exception=type(e).__name__, stage=stage, code=0,
                   message=str(e))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
