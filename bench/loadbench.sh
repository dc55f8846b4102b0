#!/usr/bin/env bash
# Load harness for the smtp receiver (run by `make bench`, after `make build`).
#
# Drives bin/otelcol-smtp (A) and Postfix's smtp-sink (B, a discard server)
# with the same smtp-source commands, alternating A B A B, and reports the
# median messages/s of each, the ratio A/B, the effect of buffer_size
# (9000 vs 32768), the cost of sender_auth (the same collector with it off
# and on, unsigned and DKIM-signed 4 KiB mail, DNS from dnsmasq on loopback),
# and the collector's memory: peak RSS growth for one 25 MiB message and RSS
# per idle connection. Targets are printed as PASS/MISS; a
# missed target takes a CPU profile (perf on the collector, and a Go CPU/heap
# profile of the conversion path).
#
# It measures, it does not gate: exit 0 when targets are missed, non-zero
# (2) only on a harness error (a tool missing, a server not starting, a
# client failing). All traffic goes to 127.0.0.1; every loop is bounded.
#
# Environment (all optional):
#   BIN           collector binary (default: bin/otelcol-smtp)
#   PAIRS         A/B pairs per case (default 5, at least 3)
#   BENCH_OUT     folder for logs, raw numbers, profiles (default: mktemp)
#   BENCH_BUDGET  seconds after which rounds beyond the third are skipped
#                 (default 420; the whole harness stays under ~10 minutes)
#   M_4K_REUSE M_4K_128 M_4K_NOREUSE M_1M M_SA   messages per run of each case
#   SA_BUDGET     extra seconds for the sender-authentication cases (default 180)
#   BENCH_ONLY=sender_auth  run only the sender-authentication cases
#   IDLE_CONNS    idle connections for the memory test (default 1000)
#   NO_PROFILE=1  skip profiling of missed targets
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
CONFIG="$BENCH_DIR/configs/bench.yaml"
CLIENT="$BENCH_DIR/smtpclient.py"
BIN=${BIN:-$ROOT/bin/otelcol-smtp}
PAIRS=${PAIRS:-5}
BENCH_BUDGET=${BENCH_BUDGET:-420}
M_4K_REUSE=${M_4K_REUSE:-20000}
M_4K_128=${M_4K_128:-20000}
M_4K_NOREUSE=${M_4K_NOREUSE:-10000}
M_1M=${M_1M:-500}
M_SA=${M_SA:-10000}
SA_BUDGET=${SA_BUDGET:-180}
BENCH_ONLY=${BENCH_ONLY:-}
IDLE_CONNS=${IDLE_CONNS:-1000}
RUN_TIMEOUT=120 # seconds, per smtp-source run

# Ports on 127.0.0.1.
PORT_A=25250        # collector, buffer_size 9000
PORT_A32=25252      # collector, buffer_size 32768
PORT_B=25251        # smtp-sink
PORT_MEM=25253      # fresh collectors of the memory tests
MPORT_A=18881
MPORT_A32=18882
MPORT_MEM=18883

OUT=${BENCH_OUT:-$(mktemp -d /tmp/smtp-bench.XXXXXX)}
mkdir -p "$OUT"
RAW="$OUT/raw.tsv"
RESULTS="$OUT/results.md"
T0=$SECONDS

log() { printf '[%4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() {
	echo "loadbench: error: $*" >&2
	exit 2
}

# ------------------------------------------------------------ processes
# Only processes this script started are stopped, each by its own PID.
STARTED=()
cleanup() {
	local pid
	for pid in "${STARTED[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${STARTED[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	STARTED=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {
	local pid=$1 keep=() p
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${STARTED[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	STARTED=("${keep[@]}")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
	for _ in $(seq $(($2 * 10))); do
		port_open "$1" && return 0
		sleep 0.1
	done
	return 1
}

# start_collector NAME SMTP_PORT METRICS_PORT BUFFER_SIZE [TIMEOUT MAX_MSG MAX_CONN]
# Sets COLLECTOR_PID.
start_collector() {
	local name=$1 port=$2 mport=$3 buf=$4 timeout=${5:-60} maxmsg=${6:-26214400} maxconn=${7:-1000}
	port_open "$port" && die "port $port is already in use"
	port_open "$mport" && die "port $mport is already in use"
	BENCH_SMTP_PORT=$port BENCH_METRICS_PORT=$mport BENCH_BUFFER_SIZE=$buf \
		BENCH_TIMEOUT=$timeout BENCH_MAX_MESSAGE_BYTES=$maxmsg BENCH_MAX_CONNECTIONS=$maxconn \
		"$BIN" --config "$CONFIG" >"$OUT/$name.log" 2>&1 &
	COLLECTOR_PID=$!
	STARTED+=("$COLLECTOR_PID")
	# The metrics port opens after the receiver has bound its listener.
	wait_port "$mport" 30 || { tail -20 "$OUT/$name.log" >&2; die "collector $name did not start"; }
	wait_port "$port" 5 || { tail -20 "$OUT/$name.log" >&2; die "collector $name: SMTP port $port not open"; }
}

start_sink() {
	port_open "$PORT_B" && die "port $PORT_B is already in use"
	local user=()
	# smtp-sink refuses to run as root without -u.
	[[ $(id -u) == 0 ]] && user=(-u nobody)
	smtp-sink "${user[@]}" "127.0.0.1:$PORT_B" 1024 >"$OUT/smtp-sink.log" 2>&1 &
	SINK_PID=$!
	STARTED+=("$SINK_PID")
	wait_port "$PORT_B" 10 || die "smtp-sink did not start"
}

accepted() { # metrics port -> otelcol_receiver_accepted_log_records (sum)
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk '/^otelcol_receiver_accepted_log_records[{ ]/ { s += $NF } END { printf "%d\n", s }'
}

heap_alloc() { # metrics port -> Go heap in use (bytes, includes garbage not yet collected)
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk '/^otelcol_process_runtime_heap_alloc_bytes[{ ]/ { printf "%.0f\n", $NF; f = 1 } END { exit !f }'
}

rss_kib() { awk "/^$2:/ { print \$2 }" "/proc/$1/status"; } # pid field

# ------------------------------------------------------------ prerequisites
ensure_tools() {
	[[ -x $BIN ]] || die "$BIN not found: run make build"
	local missing=()
	command -v smtp-source >/dev/null || missing+=(postfix)
	command -v smtp-sink >/dev/null || missing+=(postfix)
	command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
	if ((${#missing[@]})); then
		[[ $(id -u) == 0 ]] || die "missing ${missing[*]}: apt-get install ${missing[*]} (as root)"
		log "installing ${missing[*]} (smtp-source, smtp-sink, dnsmasq; no daemon is started)"
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		apt-get update -qq >"$OUT/apt.log" 2>&1 || die "apt-get update failed (see $OUT/apt.log)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$OUT/apt.log" 2>&1 ||
			die "apt-get install ${missing[*]} failed (see $OUT/apt.log)"
	fi
	local t
	for t in smtp-source smtp-sink dnsmasq curl python3 awk; do
		command -v "$t" >/dev/null || die "$t not found"
	done
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	(($(ulimit -n) >= IDLE_CONNS + 100)) || die "open file limit $(ulimit -n) too low for $IDLE_CONNS connections"
	((PAIRS >= 3)) || die "PAIRS must be at least 3"
}

# cpu_busy SECONDS -> percent of all cores busy over that window (/proc/stat)
cpu_busy() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	sleep "$1"
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2];
		printf "%.0f\n", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

# The machine has 2 cores: anything else running (a build, a test run)
# distorts the numbers. Wait, bounded, for it to be quiet.
wait_quiet() {
	local limit=${BENCH_QUIET_WAIT:-120} start=$SECONDS
	while :; do
		BUSY_START=$(cpu_busy 2)
		((BUSY_START <= 15)) && return 0
		if ((SECONDS - start >= limit)); then
			log "WARNING: the machine is busy (${BUSY_START}% CPU used by other processes); results will be noisy"
			return 0
		fi
		log "machine busy (${BUSY_START}% CPU used by other processes); waiting for it to be quiet"
		sleep 5
	done
}

# ------------------------------------------------------------ throughput
# timed_source LABEL TARGET_PORT SMTP_SOURCE_ARGS...
#   -> prints "elapsed_seconds smtp_source_cpu_seconds"
timed_source() {
	local label=$1 port=$2 t1 t2 rc=0
	shift 2
	t1=$(date +%s%N)
	timeout "$RUN_TIMEOUT" smtp-source "$@" "127.0.0.1:$port" >>"$OUT/smtp-source.log" 2>&1 || rc=$?
	t2=$(date +%s%N)
	((rc == 0)) || { tail -5 "$OUT/smtp-source.log" >&2; die "smtp-source ($label, port $port) exited $rc"; }
	# `times` line 2: user and system time of this subshell's children,
	# i.e. of smtp-source (and timeout), e.g. "0m1.234s 0m0.567s".
	times | tail -1 | awk -v a="$t1" -v b="$t2" '{
		n = 0
		for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] }
		printf "%.4f %.3f\n", (b - a) / 1e9, n }'
}

# user + nice + system + steal of all cores; irq and softirq time (the loopback
# TCP stack of the test itself) is charged to no process, so it is left out.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }
NCPU=$(nproc)

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime of all threads

# run_one CASE TARGET PORT MPORT PID MSGS ARGS...: one run, appended to $RAW
# (msg/s, and the server's CPU time per message from /proc/PID/stat).
run_one() {
	local case=$1 target=$2 port=$3 mport=$4 pid=$5 msgs=$6 before after secs rate c1 c2 cpu
	shift 6
	if [[ -n $mport ]]; then
		before=$(accepted "$mport") || die "cannot read the collector's metrics on port $mport"
	fi
	local out ccpu b1 b2 other
	c1=$(cpu_ticks "$pid")
	b1=$(busy_ticks)
	out=$(timed_source "$case/$target" "$port" "$@")
	b2=$(busy_ticks)
	c2=$(cpu_ticks "$pid")
	read -r secs ccpu <<<"$out"
	# CPU used by anything but the server and smtp-source during the run, in
	# % of the machine: other builds and tests show up here, but also kernel
	# threads (ksoftirqd) doing this test's loopback networking and the
	# rounding of 10 ms ticks over short runs: 0-30% is normal on an
	# otherwise idle machine, more means the run was disturbed.
	other=$(awk -v b="$((b2 - b1))" -v s="$((c2 - c1))" -v c="$ccpu" -v hz="$CLK_TCK" -v e="$secs" -v n="$NCPU" \
		'BEGIN { o = 100 * (b - s - c * hz) / (e * n * hz); printf "%.0f\n", o < 0 ? 0 : o }')
	if [[ -n $mport ]]; then
		after=$(accepted "$mport") || die "cannot read the collector's metrics on port $mport"
		if ((after - before != msgs)); then
			die "$case/$target: the receiver counted $((after - before)) accepted records, smtp-source sent $msgs"
		fi
	fi
	rate=$(awk -v m="$msgs" -v s="$secs" 'BEGIN { printf "%.1f\n", m / s }')
	cpu=$(awk -v d="$((c2 - c1))" -v hz="$CLK_TCK" -v m="$msgs" 'BEGIN { printf "%.1f\n", d * 1e6 / hz / m }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$target" "$msgs" "$secs" "$rate" "$cpu" "$other" >>"$RAW"
	log "$(printf '%-12s %-10s %6d msgs %8.3f s %9.1f msg/s %7.1f µs CPU/msg  others %3d%%' "$case" "$target" "$msgs" "$secs" "$rate" "$cpu" "$other")"
}

median() { # CASE TARGET [COLUMN] -> median of msg/s (column 5) or another column
	awk -F'\t' -v c="$1" -v t="$2" -v k="${3:-5}" '$1 == c && $2 == t { print $k }' "$RAW" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

runs() { # msg/s of each run, with the other processes' CPU % when above 40
	awk -F'\t' -v c="$1" -v t="$2" '$1 == c && $2 == t {
		printf "%s%.0f%s", sep, $5, ($7 > 40 ? " (others " $7 "%)" : ""); sep = ", " }' "$RAW"
}

declare -A CASE_ARGS CASE_MSGS CASE_BUF32
CASES=(4k-reuse-8 4k-reuse-128 4k-noreuse-8 1m-reuse-8)
CASE_ARGS[4k-reuse-8]="-d -s 8 -l 4096"
CASE_ARGS[4k-reuse-128]="-d -s 128 -l 4096"
CASE_ARGS[4k-noreuse-8]="-s 8 -l 4096"
CASE_ARGS[1m-reuse-8]="-d -s 8 -l 1048576"
CASE_MSGS[4k-reuse-8]=$M_4K_REUSE
CASE_MSGS[4k-reuse-128]=$M_4K_128
CASE_MSGS[4k-noreuse-8]=$M_4K_NOREUSE
CASE_MSGS[1m-reuse-8]=$M_1M
CASE_BUF32[4k-reuse-8]=1
CASE_BUF32[1m-reuse-8]=1

throughput() {
	start_collector collector-buf9000 "$PORT_A" "$MPORT_A" 9000
	PID_A=$COLLECTOR_PID
	start_collector collector-buf32768 "$PORT_A32" "$MPORT_A32" 32768
	PID_A32=$COLLECTOR_PID
	start_sink
	log "collector A (buffer_size 9000) pid $PID_A, A32 (32768) pid $PID_A32, smtp-sink pid $SINK_PID"

	# Warm-up (not recorded): first connections, page faults, GC sizing.
	local c r args msgs
	for port in "$PORT_A" "$PORT_A32" "$PORT_B"; do
		timed_source warmup "$port" -d -s 8 -l 4096 -m 2000 >/dev/null
	done

	printf 'case\ttarget\tmsgs\tseconds\tmsg_per_s\tserver_cpu_us_per_msg\tothers_cpu_pct\n' >"$RAW"
	for c in "${CASES[@]}"; do
		read -ra args <<<"${CASE_ARGS[$c]}"
		msgs=${CASE_MSGS[$c]}
		for r in $(seq "$PAIRS"); do
			if ((r > 3 && SECONDS - T0 > BENCH_BUDGET)); then
				log "time budget of ${BENCH_BUDGET}s used: $c stops after $((r - 1)) pairs"
				break
			fi
			# Alternate the order inside a round so neither side always goes first.
			if ((r % 2)); then
				run_one "$c" receiver "$PORT_A" "$MPORT_A" "$PID_A" "$msgs" "${args[@]}" -m "$msgs"
				run_one "$c" smtp-sink "$PORT_B" "" "$SINK_PID" "$msgs" "${args[@]}" -m "$msgs"
			else
				run_one "$c" smtp-sink "$PORT_B" "" "$SINK_PID" "$msgs" "${args[@]}" -m "$msgs"
				run_one "$c" receiver "$PORT_A" "$MPORT_A" "$PID_A" "$msgs" "${args[@]}" -m "$msgs"
			fi
			if [[ -n ${CASE_BUF32[$c]:-} ]]; then
				run_one "$c" recv-32768 "$PORT_A32" "$MPORT_A32" "$PID_A32" "$msgs" "${args[@]}" -m "$msgs"
			fi
		done
	done
	LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
	stop_pid "$PID_A32"
	stop_pid "$SINK_PID"
	# Collector A stays up for a profile of a missed target.
}

# profile_case CASE: perf record of collector A during one more run of CASE.
profile_case() {
	local c=$1 args msgs secs
	read -ra args <<<"${CASE_ARGS[$c]}"
	msgs=${CASE_MSGS[$c]}
	if ! command -v perf >/dev/null; then
		log "perf not found: no whole-process profile of $c"
		return 0
	fi
	# Long enough to cover the run; perf stops when sleep ends.
	secs=$(awk -v c="$c" -F'\t' '$1 == c && $2 == "receiver" { s = $4 } END { printf "%d\n", s + 1 }' "$RAW")
	# perf adds empty columns after the symbol; drop them.
	local TRIM='s/([[:space:]]+-)*[[:space:]]*$//'
	log "perf: profiling the collector during one $c run (${secs}s)"
	perf record -F 999 -g -p "$PID_A" -o "$OUT/perf-$c.data" -- sleep "$secs" >"$OUT/perf-$c.log" 2>&1 &
	local perf_pid=$!
	STARTED+=("$perf_pid")
	sleep 0.5
	timed_source "profile/$c" "$PORT_A" "${args[@]}" -m "$msgs" >/dev/null
	wait "$perf_pid" || true
	stop_pid "$perf_pid"
	perf report -i "$OUT/perf-$c.data" --no-children --sort symbol --stdio --percent-limit 0.8 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -E "$TRIM" | head -30 >"$OUT/perf-$c-self.txt" || true
	perf report -i "$OUT/perf-$c.data" --children --sort symbol --stdio --percent-limit 3 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -E "$TRIM" | head -45 >"$OUT/perf-$c-cumulative.txt" || true
	# Kernel vs user split of the samples.
	perf report -i "$OUT/perf-$c.data" --no-children --sort dso --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -E "$TRIM" | head -8 >"$OUT/perf-$c-dso.txt" || true
}

# go_profile KIND BENCH: CPU or heap profile of BenchmarkConvert/BENCH.
go_profile() {
	local kind=$1 bench=$2 pkg="$ROOT/internal/mailconv" bin="$OUT/mailconv.test"
	command -v go >/dev/null || { log "go not found: no conversion-path profile"; return 0; }
	[[ -x $bin ]] || (cd "$ROOT" && go test -c -o "$bin" ./internal/mailconv/) >"$OUT/go-test-build.log" 2>&1 ||
		{ log "go test -c failed (see $OUT/go-test-build.log)"; return 0; }
	local flag=(-test.cpuprofile "$OUT/convert-$bench.cpu.pprof") top=(-top -nodecount=25)
	if [[ $kind == mem ]]; then
		flag=(-test.memprofile "$OUT/convert-$bench.mem.pprof" -test.memprofilerate 65536)
		top=(-top -nodecount=20 -sample_index=alloc_space)
	fi
	(cd "$pkg" && timeout 300 "$bin" -test.run '^$' -test.bench "BenchmarkConvert/$bench\$" -test.benchmem \
		-test.benchtime 3s "${flag[@]}") >"$OUT/convert-$bench.$kind.bench.txt" 2>&1 ||
		{ log "conversion benchmark failed (see $OUT/convert-$bench.$kind.bench.txt)"; return 0; }
	go tool pprof "${top[@]}" "$bin" "${flag[1]}" >"$OUT/convert-$bench.$kind.top.txt" 2>/dev/null || true
}

# ------------------------------------------------------------ sender_auth
# The same collector with sender_auth off (SA_OFF) and on (SA_ON: SPF, DKIM
# and DMARC, cache warm), both up at once, alternated like A and B above;
# the cost is 1 - on/off of the median msg/s (issue 11: at most 20%). DNS is
# Debian's dnsmasq on loopback serving example.test: SPF for 127.0.0.0/8,
# DMARC p=reject, and two DKIM keys made by bench/dkimsign, which also signs
# the messages of the signed cases once (smtp-source -F sends that file).
PORT_SA_OFF=25254
PORT_SA_ON=25255
PORT_DNS=25353
MPORT_SA_OFF=18884
MPORT_SA_ON=18885
SA_FROM=bench@example.test

declare -A SA_ARGS
SA_CASES=()

# start_dnsmasq: the test zone on 127.0.0.1:$PORT_DNS; sets DNS_PID.
start_dnsmasq() {
	local conf="$OUT/dnsmasq.conf" f
	port_open "$PORT_DNS" && die "port $PORT_DNS is already in use"
	{
		echo "port=$PORT_DNS"
		printf 'listen-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nlocal=/test/\nlocal-ttl=3600\n'
		echo "user=$(id -un)"
		echo 'txt-record=example.test,"v=spf1 ip4:127.0.0.0/8 -all"'
		echo 'txt-record=_dmarc.example.test,"v=DMARC1; p=reject"'
		for f in "$OUT"/dkim-*.dnsmasq; do [[ -s $f ]] && cat "$f"; done
	} >"$conf"
	dnsmasq --keep-in-foreground --conf-file="$conf" --pid-file="$OUT/dnsmasq.pid" >"$OUT/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	STARTED+=("$DNS_PID")
	# dnsmasq listens on TCP as well as UDP: the TCP port says it is up.
	wait_port "$PORT_DNS" 10 || { cat "$OUT/dnsmasq.log" >&2; die "dnsmasq did not start"; }
}

# sign_messages: one rsa-2048 and one ed25519 signed message (bench/dkimsign).
sign_messages() {
	SA_CASES=(sa-unsigned)
	SA_ARGS[sa-unsigned]="-l 4096"
	if ! command -v go >/dev/null; then
		log "go not found: no DKIM-signed sender-auth cases"
		return 0
	fi
	(cd "$ROOT" && go build -o "$OUT/dkimsign" ./bench/dkimsign) >"$OUT/dkimsign-build.log" 2>&1 ||
		die "building bench/dkimsign failed (see $OUT/dkimsign-build.log)"
	local algo sel
	for algo in rsa ed25519; do
		sel=bench-$algo
		"$OUT/dkimsign" -algo "$algo" -domain example.test -selector "$sel" -size 4096 \
			-msg "$OUT/signed-$algo.eml" -dnsmasq "$OUT/dkim-$algo.dnsmasq" || die "dkimsign -algo $algo failed"
		SA_CASES+=("sa-dkim-$algo")
		SA_ARGS[sa-dkim-$algo]="-F $OUT/signed-$algo.eml"
	done
}

start_sa_collectors() {
	start_collector collector-sa-off "$PORT_SA_OFF" "$MPORT_SA_OFF" 9000
	PID_SA_OFF=$COLLECTOR_PID
	BENCH_SENDER_AUTH=true BENCH_DNS_SERVER=127.0.0.1:$PORT_DNS \
		start_collector collector-sa-on "$PORT_SA_ON" "$MPORT_SA_ON" 9000
	PID_SA_ON=$COLLECTOR_PID
}

sa_results() { # metrics port, method -> "result=count ..." of otelcol_smtp_sender_auth_results
	curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '/^otelcol_smtp_sender_auth_results[{]/ && $0 ~ "method=\"" m "\"" {
		match($0, /result="[a-z]+"/); r = substr($0, RSTART + 8, RLENGTH - 9); n[r] += $NF }
		END { for (r in n) printf "%s%s=%d", (s++ ? " " : ""), r, n[r] }'
}

# sa_expect CASE: every "on" message so far passed what it should.
sa_expect() {
	local spf dkim dmarc
	spf=$(sa_results "$MPORT_SA_ON" spf)
	dkim=$(sa_results "$MPORT_SA_ON" dkim)
	dmarc=$(sa_results "$MPORT_SA_ON" dmarc)
	[[ $spf =~ ^pass=[0-9]+$ ]] || die "$1: sender_auth SPF results are [$spf], want pass only"
	case $1 in
	sa-unsigned) [[ $dkim =~ ^none=[0-9]+$ ]] || die "$1: DKIM results are [$dkim], want none only" ;;
	*) [[ $dkim =~ pass=[0-9]+ && ! $dkim =~ (fail|error|policy|neutral) ]] || die "$1: DKIM results are [$dkim], want pass" ;;
	esac
	[[ $dmarc =~ ^pass=[0-9]+$ ]] || die "$1: DMARC results are [$dmarc], want pass only"
	SA_SEEN="spf [$spf], dkim [$dkim], dmarc [$dmarc]"
}

sender_auth() {
	sign_messages
	start_dnsmasq
	start_sa_collectors
	log "sender_auth: off pid $PID_SA_OFF, on pid $PID_SA_ON, dnsmasq pid $DNS_PID on port $PORT_DNS"
	local c r args msgs=$M_SA
	[[ -s $RAW ]] || printf 'case\ttarget\tmsgs\tseconds\tmsg_per_s\tserver_cpu_us_per_msg\tothers_cpu_pct\n' >"$RAW"
	for c in "${SA_CASES[@]}"; do
		read -ra args <<<"-d -s 8 -f $SA_FROM ${SA_ARGS[$c]}"
		# Warm-up (not recorded): connections, GC sizing, and the DNS cache.
		timed_source warmup "$PORT_SA_OFF" "${args[@]}" -m 1000 >/dev/null
		timed_source warmup "$PORT_SA_ON" "${args[@]}" -m 1000 >/dev/null
		sa_expect "$c"
		for r in $(seq "$PAIRS"); do
			if ((r > 3 && SECONDS - T0 > BENCH_BUDGET + SA_BUDGET)); then
				log "time budget used: $c stops after $((r - 1)) pairs"
				break
			fi
			if ((r % 2)); then
				run_one "$c" sa-off "$PORT_SA_OFF" "$MPORT_SA_OFF" "$PID_SA_OFF" "$msgs" "${args[@]}" -m "$msgs"
				run_one "$c" sa-on "$PORT_SA_ON" "$MPORT_SA_ON" "$PID_SA_ON" "$msgs" "${args[@]}" -m "$msgs"
			else
				run_one "$c" sa-on "$PORT_SA_ON" "$MPORT_SA_ON" "$PID_SA_ON" "$msgs" "${args[@]}" -m "$msgs"
				run_one "$c" sa-off "$PORT_SA_OFF" "$MPORT_SA_OFF" "$PID_SA_OFF" "$msgs" "${args[@]}" -m "$msgs"
			fi
		done
		sa_expect "$c"
		SA_CHECKED[$c]=$SA_SEEN
	done
	stop_pid "$PID_SA_OFF"
	stop_pid "$DNS_PID"
	# The "on" collector stays up for a profile of a missed target.
}

# profile_sa CASE: Go CPU profile of BenchmarkSenderAuthCost/<message>/on
# (receiver/smtpreceiver: the receiver with a no-op consumer and the same
# checks against a loopback DNS server). The collector binary is built
# without symbols, so perf could not name its functions.
profile_sa() {
	local c=$1 bench bin="$OUT/smtpreceiver.test"
	case $c in
	sa-unsigned) bench=unsigned ;;
	sa-dkim-rsa) bench=rsa-2048 ;;
	sa-dkim-ed25519) bench=ed25519 ;;
	esac
	command -v go >/dev/null || { log "go not found: no profile of $c"; return 0; }
	[[ -x $bin ]] || (cd "$ROOT" && go test -c -o "$bin" ./receiver/smtpreceiver/) >"$OUT/go-test-build.log" 2>&1 ||
		{ log "go test -c failed (see $OUT/go-test-build.log)"; return 0; }
	log "go test profile of BenchmarkSenderAuthCost/$bench/on for $c"
	(cd "$ROOT/receiver/smtpreceiver" && timeout 300 "$bin" -test.run '^$' -test.bench "BenchmarkSenderAuthCost/$bench/on\$" \
		-test.benchtime 4000x -test.cpuprofile "$OUT/senderauth-$bench.cpu.pprof") >"$OUT/senderauth-$bench.bench.txt" 2>&1 ||
		{ log "sender-auth benchmark failed (see $OUT/senderauth-$bench.bench.txt)"; return 0; }
	# Cumulative shares of the sender-authentication code and what it calls
	# (the benchmark's own key generation left out).
	go tool pprof -top -cum -nodecount=400 -ignore 'GenerateKey' "$bin" "$OUT/senderauth-$bench.cpu.pprof" 2>/dev/null |
		grep -E 'Total samples|senderauth\.|go-msgauth|go/spf|crypto/(rsa|ed25519|internal/fips140/(rsa|bigmod|edwards25519))\.|textproto\.ReadHeader|mallocgc$|gcBgMarkWorker$' |
		head -40 >"$OUT/senderauth-$bench.top.txt" || true
}

sa_report() {
	local c off on cost res
	{
		echo
		echo "### Sender authentication (median msg/s; same collector, sender_auth off vs on, same run)"
		echo
		echo "8 sessions with reuse (\`-d -s 8\`), MAIL FROM $SA_FROM, $M_SA messages per run, $PAIRS pairs;"
		echo "DNS: dnsmasq on 127.0.0.1:$PORT_DNS, cache warm. sa-unsigned is smtp-source's own 4 KiB"
		echo "message (\`-l 4096\`); sa-dkim-* send one message signed by bench/dkimsign (\`-F\`, 4.5 KiB)."
		echo
		echo "| case | off msg/s | on msg/s | cost (1 − on/off) | target | result | server CPU µs/msg (off / on) | results seen (on) |"
		echo "| --- | ---: | ---: | ---: | --- | --- | ---: | --- |"
		for c in "${SA_CASES[@]}"; do
			off=$(median "$c" sa-off)
			on=$(median "$c" sa-on)
			cost=$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.1f", (1 - b / a) * 100 }')
			res=$(verdict "$cost" 20 le)
			[[ $res == MISS ]] && SA_MISSED+=("$c")
			echo "| $c | $off | $on | $cost% | ≤ 20% | $res | $(median "$c" sa-off 6) / $(median "$c" sa-on 6) | ${SA_CHECKED[$c]} |"
		done
		echo
		for c in "${SA_CASES[@]}"; do
			echo "- $c runs: off [$(runs "$c" sa-off)], on [$(runs "$c" sa-on)]"
		done
	} >>"$RESULTS"
}

sa_profiles() {
	local c
	((${#SA_MISSED[@]})) || return 0
	for c in "${SA_MISSED[@]}"; do profile_sa "$c"; done
	{
		echo
		echo "### Profiles of the missed sender-authentication targets"
		local f
		for f in "$OUT"/senderauth-*.top.txt; do
			[[ -s $f ]] || continue
			echo
			echo "go test profile $(basename "$f" .top.txt) (BenchmarkSenderAuthCost/…/on), cumulative, sender-auth code only:"
			echo '```'
			grep -E '^Benchmark' "${f%.top.txt}.bench.txt" || true
			cat "$f"
			echo '```'
		done
	} >>"$RESULTS"
}

# ------------------------------------------------------------ memory
memory() {
	local before hwm pid sent got
	# One 25 MiB message (20 MiB base64 attachment) on a fresh collector.
	start_collector mem-25mib "$PORT_MEM" "$MPORT_MEM" 9000 120 31457280 1000
	pid=$COLLECTOR_PID
	sleep 3
	before=$(rss_kib "$pid" VmRSS)
	MEM_BASELINE=$before
	# Reset VmHWM to the current RSS, so it records the peak of this message.
	echo 5 >"/proc/$pid/clear_refs" || die "cannot reset VmHWM of pid $pid"
	sent=$(timeout 180 python3 "$CLIENT" bigmail --port "$PORT_MEM") || die "bigmail failed"
	sleep 1
	got=$(accepted "$MPORT_MEM") || die "cannot read the collector's metrics on port $MPORT_MEM"
	((got == 1)) || die "25 MiB message: receiver accepted $got records, want 1"
	hwm=$(rss_kib "$pid" VmHWM)
	MEM_BIG_SIZE=$sent
	MEM_BIG_BEFORE=$before
	MEM_BIG_HWM=$hwm
	MEM_BIG_GROWTH=$((hwm - before))
	log "25 MiB message ($sent bytes): VmRSS before $before KiB, VmHWM after $hwm KiB, growth $MEM_BIG_GROWTH KiB"
	stop_pid "$pid"

	idle_conns 9000
	IDLE_9000=$IDLE_RESULT
	idle_conns 32768
	IDLE_32768=$IDLE_RESULT
}

# idle_conns BUFFER_SIZE: sets IDLE_RESULT="before with per_conn_kib"
idle_conns() {
	local buf=$1 pid before with hb hw ready="$OUT/idle-ready-$1" cpid
	rm -f "$ready"
	start_collector "mem-idle-$buf" "$PORT_MEM" "$MPORT_MEM" "$buf" 300 26214400 2000
	pid=$COLLECTOR_PID
	sleep 3
	before=$(rss_kib "$pid" VmRSS)
	hb=$(heap_alloc "$MPORT_MEM") || die "cannot read the collector's metrics on port $MPORT_MEM"
	python3 "$CLIENT" idle --port "$PORT_MEM" --count "$IDLE_CONNS" --ready "$ready" --hold 90 \
		>"$OUT/idle-$buf.log" 2>&1 &
	cpid=$!
	STARTED+=("$cpid")
	for _ in $(seq 600); do
		[[ -s $ready ]] && break
		kill -0 "$cpid" 2>/dev/null || { cat "$OUT/idle-$buf.log" >&2; die "idle client failed"; }
		sleep 0.1
	done
	[[ -s $ready ]] || die "idle client did not open $IDLE_CONNS connections within 60 s"
	sleep 2
	with=$(rss_kib "$pid" VmRSS)
	hw=$(heap_alloc "$MPORT_MEM") || die "cannot read the collector's metrics on port $MPORT_MEM"
	IDLE_RESULT="$before $with $(awk -v a="$before" -v b="$with" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (b - a) / n }')"
	IDLE_RESULT+=" $(awk -v a="$hb" -v b="$hw" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (b - a) / 1024 / n }')"
	log "idle ($buf): VmRSS before $before KiB, with $IDLE_CONNS connections $with KiB"
	stop_pid "$cpid"
	stop_pid "$pid"
}

# ------------------------------------------------------------ report
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "ge") ? v >= t : v <= t; print ok ? "PASS" : "MISS" }'; }

machine() {
	echo "- CPU: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); kernel $(uname -r)"
	echo "- $(command -v go >/dev/null && go version || echo 'go: not found'); Postfix smtp-source $(postconf -d mail_version 2>/dev/null | awk '{ print $3 }')"
	echo "- collector: $("$BIN" --version 2>/dev/null | head -1)"
	echo "- CPU used by other processes just before the start: ${BUSY_START}%; load average at start: $LOAD_START, at the end of the throughput runs: $LOAD_END"
}

report() {
	local c a b a32 ratio target res
	{
		echo "## SMTP receiver load benchmark"
		echo
		machine
		echo "- pairs per case: $PAIRS (A = receiver, B = smtp-sink, alternated), median of the runs"
		local worst
		worst=$(awk -F'\t' 'NR > 1 && $7 > m { m = $7 } END { print m + 0 }' "$RAW")
		echo "- CPU used outside the server and smtp-source during the runs: at most ${worst}% of the machine"
		echo "  (kernel network threads and tick rounding make 0-30% normal)$( ((worst > 40)) &&
			echo " — WARNING: some runs were disturbed by other load; see the runs marked below")"
		echo
		echo "### Throughput (median msg/s; smtp-source to 127.0.0.1)"
		echo
		echo "| case | smtp-source | receiver msg/s | smtp-sink msg/s | receiver/sink | target | result | server CPU µs/msg (receiver / sink) |"
		echo "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |"
		for c in "${CASES[@]}"; do
			a=$(median "$c" receiver)
			b=$(median "$c" smtp-sink)
			ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
			case $c in
			# Targets of issue 14 (ratios within one run).
			4k-reuse-*) target="≥ 0.60"; res=$(verdict "$ratio" 0.60 ge) ;;
			1m-*) target="≥ 0.75 (MB/s)"; res=$(verdict "$ratio" 0.75 ge) ;;
			*) target="-"; res="info" ;;
			esac
			if [[ $c == 1m-* ]]; then
				a="$a ($(awk -v r="$a" 'BEGIN { printf "%.1f", r * 1048576 / 1e6 }') MB/s)"
				b="$b ($(awk -v r="$b" 'BEGIN { printf "%.1f", r * 1048576 / 1e6 }') MB/s)"
			fi
			echo "| $c | \`${CASE_ARGS[$c]} -m ${CASE_MSGS[$c]}\` | $a | $b | $ratio | $target | $res | $(median "$c" receiver 6) / $(median "$c" smtp-sink 6) |"
			[[ $res == MISS ]] && MISSED_CASES+=("$c")
		done
		echo
		echo "MB/s counts the 1 MiB payload (1,048,576 bytes per message) in 10^6 bytes. Server CPU is"
		echo "utime + stime of the server process (all threads) during the run, per message; smtp-source"
		echo "runs on the same 2 cores and is not counted."
		echo
		echo "### buffer_size (receiver, median msg/s)"
		echo
		echo "| case | buffer_size 9000 | buffer_size 32768 | change |"
		echo "| --- | ---: | ---: | ---: |"
		for c in "${CASES[@]}"; do
			[[ -n ${CASE_BUF32[$c]:-} ]] || continue
			a=$(median "$c" receiver)
			a32=$(median "$c" recv-32768)
			echo "| $c | $a | $a32 | $(awk -v a="$a" -v b="$a32" 'BEGIN { printf "%+.1f%%", (b / a - 1) * 100 }') |"
		done
		echo
		echo "### Memory (collector RSS, /proc/PID/status)"
		echo
		echo "| measurement | value | target | result |"
		echo "| --- | ---: | --- | --- |"
		echo "| baseline VmRSS after start (idle, no mail yet) | $((MEM_BASELINE / 1024)) MiB ($MEM_BASELINE KiB) | - | info |"
		local growth_mib limit
		growth_mib=$(awk -v g="$MEM_BIG_GROWTH" 'BEGIN { printf "%.1f", g / 1024 }')
		limit=$((2 * MEM_BIG_SIZE / 1024))
		res=$(verdict "$MEM_BIG_GROWTH" "$limit" le)
		[[ $res == MISS ]] && MISSED_MEM=1
		echo "| peak RSS growth, one 25 MiB message ($MEM_BIG_SIZE bytes, 20 MiB base64 attachment): VmHWM $MEM_BIG_HWM KiB − VmRSS before $MEM_BIG_BEFORE KiB | $growth_mib MiB ($(awk -v g="$MEM_BIG_GROWTH" -v s="$MEM_BIG_SIZE" 'BEGIN { printf "%.2f", g * 1024 / s }')× message) | ≤ 2× (≤ $((limit / 1024)) MiB) | $res |"
		local i9 i32
		read -ra i9 <<<"$IDLE_9000"
		read -ra i32 <<<"$IDLE_32768"
		res=$(verdict "${i9[2]}" 12 le)
		[[ $res == MISS ]] && MISSED_IDLE=1
		echo "| per idle connection, buffer_size 9000: ($((i9[1])) − $((i9[0])) KiB) / $IDLE_CONNS | ${i9[2]} KiB | ≤ 12 KiB | $res |"
		echo "| per idle connection, buffer_size 32768: ($((i32[1])) − $((i32[0])) KiB) / $IDLE_CONNS | ${i32[2]} KiB | - | info |"
		echo "| Go heap per idle connection (otelcol_process_runtime_heap_alloc_bytes), buffer_size 9000 / 32768 | ${i9[3]} / ${i32[3]} KiB | - | info |"
		echo
		echo "### Runs (msg/s of each run, in order)"
		echo
		for c in "${CASES[@]}"; do
			echo "- $c: receiver [$(runs "$c" receiver)], smtp-sink [$(runs "$c" smtp-sink)]$([[ -n ${CASE_BUF32[$c]:-} ]] && echo ", buffer_size 32768 [$(runs "$c" recv-32768)]")"
		done
	} >"$RESULTS"
}

profiles() {
	local c
	for c in "${MISSED_CASES[@]}"; do
		profile_case "$c"
	done
	if ((${#MISSED_CASES[@]})); then
		go_profile cpu small
		go_profile cpu 1MiB
	fi
	if ((MISSED_MEM)); then
		go_profile mem 25MiB_with_20MiB_attachment
	fi
	{
		echo
		echo "### Profiles of missed targets"
		echo
		if ((${#MISSED_CASES[@]} == 0 && MISSED_MEM == 0 && MISSED_IDLE == 0)); then
			echo "No target missed: no profile taken."
		fi
		for c in "${MISSED_CASES[@]}"; do
			if [[ -s $OUT/perf-$c-self.txt ]]; then
				echo "perf, collector during one $c run, top functions by self time:"
				echo '```'
				cat "$OUT/perf-$c-self.txt"
				echo '```'
				echo "by shared object:"
				echo '```'
				cat "$OUT/perf-$c-dso.txt"
				echo '```'
				echo "cumulative (children), ≥ 3%:"
				echo '```'
				cat "$OUT/perf-$c-cumulative.txt"
				echo '```'
			fi
		done
		local f
		for f in "$OUT"/convert-*.top.txt; do
			[[ -s $f ]] || continue
			echo "go test profile $(basename "$f" .top.txt) (BenchmarkConvert):"
			echo '```'
			grep -E '^(Benchmark|ok|PASS)' "${f%.top.txt}.bench.txt" || true
			sed -n '1,30p' "$f"
			echo '```'
		done
	} >>"$RESULTS"
}

# ------------------------------------------------------------ main
MISSED_CASES=()
MISSED_MEM=0
MISSED_IDLE=0
SA_MISSED=()
declare -A SA_CHECKED
ensure_tools
wait_quiet
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "output folder: $OUT (load average $LOAD_START)"
if [[ $BENCH_ONLY == sender_auth ]]; then
	LOAD_END=-
	sender_auth
	LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
	{
		echo "## SMTP receiver load benchmark (sender-authentication cases only)"
		echo
		machine
	} >"$RESULTS"
	sa_report
	[[ ${NO_PROFILE:-0} == 1 ]] || sa_profiles
	stop_pid "$PID_SA_ON"
else
	throughput
	sender_auth
	memory
	report
	sa_report
	if [[ ${NO_PROFILE:-0} != 1 ]]; then
		profiles
		sa_profiles
	fi
	stop_pid "$PID_SA_ON"
	stop_pid "$PID_A"
fi
echo
cat "$RESULTS"
echo
echo "Total harness time: $((SECONDS - T0)) s; logs, raw numbers and profiles in $OUT"
