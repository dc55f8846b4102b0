#!/usr/bin/env python3
"""Sends one test mail to 127.0.0.1:PORT with SUBJECT, retrying while the
server is still starting: up to ATTEMPTS tries half a second apart (default
60). Exits 0 once a message got 250, 1 otherwise. Used by scripts/image.sh
and scripts/deb-check.sh.

Usage: send-test-mail.py PORT SUBJECT [ATTEMPTS]
"""
import smtplib
import sys
import time

port, subject = int(sys.argv[1]), sys.argv[2]
attempts = int(sys.argv[3]) if len(sys.argv) > 3 else 60
message = ("From: alice@example.com\r\nTo: ops@example.org\r\n"
           "Subject: %s\r\n\r\nfrom the packaging check\r\n" % subject)
for attempt in range(attempts):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.sendmail("alice@example.com", ["ops@example.org"], message)
        sys.exit(0)
    except (OSError, smtplib.SMTPException) as e:
        last = e
        time.sleep(0.5)
print("send-test-mail: no 250 from 127.0.0.1:%d after %d attempts: %s" % (port, attempts, last), file=sys.stderr)
sys.exit(1)
