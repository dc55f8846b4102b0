#!/usr/bin/env bash
# Checks the README's quick start as a new user runs it: `make run` in one
# shell, the curl command in another, the record in ./smtp-records.jsonl.
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

records=smtp-records.jsonl
rm -f "$records"
log=$(mktemp)
make run >"$log" 2>&1 &
pid=$!
cleanup() {
	pkill -TERM -P "$pid" 2>/dev/null || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$records" "$log"
}
trap cleanup EXIT

for _ in $(seq 1 600); do # make run builds first when needed
	if (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "make run exited"; exit 1; fi
	sleep 1
done

# The README's quick-start command, as written there.
curl --url smtp://127.0.0.1:2525 --mail-from alice@example.com \
     --mail-rcpt ops@example.com --upload-file examples/mail/hello.eml

for _ in $(seq 1 50); do
	if grep -q 'Hello from curl' "$records" 2>/dev/null; then break; fi
	sleep 0.2
done
grep -q '"stringValue":"Hello from curl"' "$records" || { cat "$log"; echo "no record in $records"; exit 1; }
grep -q 'Body: Map(' "$log" || { cat "$log"; echo "the debug exporter printed no record"; exit 1; }
echo "quickstart: make run received the curl mail; the record is in $records and on the console"
