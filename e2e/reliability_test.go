//go:build reliability

package e2e

// The reliability suite: what a 250 from the smtp receiver is worth when the
// backend is down, the exporter queue is full, the collector is killed or
// stopped under load, a real MTA (Postfix) relays through it, and over a
// soak run. Run it with `make reliability`, or after `make build` with
//
//	go test -tags reliability -count=1 -v -timeout 30m ./e2e/...
//
// Every scenario prints one line "RELIABILITY <test>: sent=... 250=...
// 4xx=... exported=... lost=..." and a summary at the end. Knobs (all
// optional): RELIABILITY_CRASH_N (200), RELIABILITY_POSTFIX_N (300),
// RELIABILITY_SOAK (2m), RELIABILITY_SOAK_WORKERS (8).
//
// docs/delivery.md states the guarantee these tests prove.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// ---------------------------------------------------------------- 1. examples/durable.yaml

// TestDurableExample validates examples/durable.yaml and checks the rules it
// must follow (TestCrashPersistentQueue then runs it).
func TestDurableExample(t *testing.T) {
	path := filepath.Join(repoRoot, "examples", "durable.yaml")
	res := run(t, []string{"OTLP_ENDPOINT=https://otlp.example.com:4318", "SMTP_STORAGE_DIR=/var/lib/otelcol-smtp/queue"}, binary, "validate", "--config", path)
	if res.Code != 0 {
		t.Fatalf("%s validate --config %s: %s", binary, path, res)
	}
	// With the placeholders' defaults (variables unset).
	resUnset := run(t, nil, "env", "-u", "OTLP_ENDPOINT", "-u", "SMTP_STORAGE_DIR", binary, "validate", "--config", path)
	if resUnset.Code != 0 {
		t.Fatalf("validate with OTLP_ENDPOINT/SMTP_STORAGE_DIR unset: %s", resUnset)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Processors map[string]any `yaml:"processors"`
		Extensions map[string]any `yaml:"extensions"`
		Exporters  map[string]struct {
			Endpoint     string         `yaml:"endpoint"`
			SendingQueue map[string]any `yaml:"sending_queue"`
			Retry        map[string]any `yaml:"retry_on_failure"`
		} `yaml:"exporters"`
		Service struct {
			Extensions []string `yaml:"extensions"`
			Pipelines  map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
				Exporters  []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	checks := 0
	for name, p := range cfg.Service.Pipelines {
		if !strings.HasPrefix(name, "logs") {
			continue
		}
		if len(p.Processors) == 0 || !strings.HasPrefix(p.Processors[0], "memory_limiter") {
			t.Errorf("pipeline %s: memory_limiter must be the first processor, got %v", name, p.Processors)
		}
		for _, proc := range p.Processors {
			if proc == "batch" || strings.HasPrefix(proc, "batch/") {
				t.Errorf("pipeline %s: a batch processor (%s) in front of the persistent queue makes 250 mean 'in memory'", name, proc)
			}
		}
		for _, e := range p.Exporters {
			ex := cfg.Exporters[e]
			if !strings.Contains(ex.Endpoint, "${env:OTLP_ENDPOINT") {
				t.Errorf("exporter %s: endpoint %q should come from ${env:OTLP_ENDPOINT}", e, ex.Endpoint)
			}
			q := ex.SendingQueue
			if q["enabled"] != true {
				t.Errorf("exporter %s: sending_queue.enabled is %v", e, q["enabled"])
			}
			st, _ := q["storage"].(string)
			if !strings.HasPrefix(st, "file_storage") {
				t.Errorf("exporter %s: sending_queue.storage %q is not a file_storage extension", e, st)
			} else if _, ok := cfg.Extensions[st]; !ok || !relContains(cfg.Service.Extensions, st) {
				t.Errorf("exporter %s: storage %q is not defined and enabled in service.extensions (%v)", e, st, cfg.Service.Extensions)
			}
			if q["block_on_overflow"] == true {
				t.Errorf("exporter %s: block_on_overflow true makes a full queue hang sessions instead of 451", e)
			}
			if ex.Retry["enabled"] != true {
				t.Errorf("exporter %s: retry_on_failure.enabled is %v", e, ex.Retry["enabled"])
			}
			checks++
		}
	}
	if checks == 0 {
		t.Errorf("no logs pipeline with an exporter in %s", path)
	}
	relReport(t, "validate ok (defaults and env), %d exporter(s) checked: memory_limiter first, no batch, sending_queue on file_storage, retry on", checks)
}

func relContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- 2. crash with a persistent queue

// relDurableConfig runs examples/durable.yaml itself, moved to a free port, with
// the collector's own metrics off.
func relDurableConfig(t *testing.T, dir string, port int, _ string) []string {
	override := fmt.Sprintf(`receivers:
  smtp/durable:
    port: %d
service:
%s`, port, quietTelemetry)
	return []string{
		filepath.Join(repoRoot, "examples", "durable.yaml"),
		writeFile(t, filepath.Join(dir, "override.yaml"), override),
	}
}

func TestCrashPersistentQueue(t *testing.T) {
	n := relEnvInt("RELIABILITY_CRASH_N", 200)
	storage := filepath.Join(t.TempDir(), "queue")
	sinkPort := freePort(t)
	env := []string{
		fmt.Sprintf("OTLP_ENDPOINT=http://127.0.0.1:%d", sinkPort),
		"SMTP_STORAGE_DIR=" + storage,
	}
	tl := counts(t)

	// Phase 1: the backend is down; every message must still get 250 (it
	// is on disk).
	c := startCollector(t, relDurableConfig, env...)
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("crash-%s-%04d", tag, i)
	}
	const workers = 4
	var mu sync.Mutex
	var accepted, failed []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var cl *relClient
			for i := w; i < n; i += workers {
				if cl == nil {
					var err error
					if cl, _, err = relDial(c.addr()); err == nil {
						if err = cl.hello("crash.example.com", nil); err != nil {
							cl.close()
							cl = nil
						}
					}
				}
				code := 0
				var o relOutcome
				if cl != nil {
					o = cl.send(relSend{From: "crash@example.com", To: "ops@example.org", Msg: relMessage(subjects[i], 1024)})
					code = o.Code
					if o.Err != nil {
						cl.close()
						cl = nil
					}
				}
				tl.reply(code)
				mu.Lock()
				if code == 250 {
					accepted = append(accepted, subjects[i])
				} else {
					failed = append(failed, fmt.Sprintf("%s: %d %s (%s) %v", subjects[i], code, o.Msg, o.Stage, o.Err))
				}
				mu.Unlock()
			}
			if cl != nil {
				cl.quit()
			}
		}(w)
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of %d messages did not get 250 with the backend down (the persistent queue should take them): %v", len(failed), n, relFirst(failed))
	}
	files, _ := filepath.Glob(filepath.Join(storage, "*"))
	t.Logf("persistent queue files before the crash: %v", files)
	if len(files) == 0 {
		t.Errorf("no file in the storage directory %s", storage)
	}

	// Phase 2: crash. No shutdown code runs.
	c.sigkill()
	t.Logf("SIGKILLed the collector after %d × 250", len(accepted))

	// Phase 3: the backend comes up, the collector restarts on the same
	// storage directory, and the queue drains into the sink.
	sink := relSink(t, sinkPort)
	c2 := startCollector(t, relDurableConfig, env...)
	ids, total := relWaitAll(t, "email.subject", accepted, 90*time.Second, 250*time.Millisecond, 2*time.Second, sink.out)
	rc := relCompare(accepted, ids, total)
	tl.exported(total)
	relReport(t, "sent=%d 250=%d 4xx/5xx/none=%d exported=%d duplicates=%d lost=%d unexpected=%d (SIGKILL with the backend down, restart on the same file_storage)",
		n, len(accepted), len(failed), rc.Exported, rc.Duplicates, rc.Lost, rc.Unexpected)
	relVerdict(t, rc, false, "records in the sink that were never accepted")
	_ = c2
}

// ---------------------------------------------------------------- 3. backpressure

func TestBackpressureQueueFull(t *testing.T) {
	const queueSize = 5
	sinkPort := freePort(t)
	cfg := func(t *testing.T, dir string, port int, _ string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/rel_backpressure:
    address: 127.0.0.1
    port: %d
    name: rel_backpressure
    timeout: 10
    data_timeout: 30
exporters:
  otlp_http:
    endpoint: http://127.0.0.1:%d
    timeout: 2s
    sending_queue:
      enabled: true
      queue_size: %d
      block_on_overflow: false
      num_consumers: 2
    retry_on_failure:
      enabled: true
      initial_interval: 200ms
      max_interval: 1s
      max_elapsed_time: 0s
service:
%s  pipelines:
    logs/rel_backpressure:
      receivers: [smtp/rel_backpressure]
      exporters: [otlp_http]
`, port, sinkPort, queueSize, quietTelemetry))}
	}
	c := startCollector(t, cfg)
	tl := counts(t)
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)

	// The replies must come within the session timeouts: no client may wait
	// for the queue (block_on_overflow false).
	const maxLatency = 5 * time.Second
	var accepted, refused []string
	var slowest time.Duration
	send := func(phase string, i int) relOutcome {
		subject := fmt.Sprintf("bp-%s-%s-%02d", tag, phase, i)
		o := relSendOne(c.addr(), nil, relSend{From: "bp@example.com", To: "ops@example.org", Msg: relMessage(subject, 512)})
		tl.reply(o.Code)
		if o.Took > slowest {
			slowest = o.Took
		}
		if o.Took > maxLatency {
			t.Errorf("%s: reply after %s (> %s): a session hung on the full queue", subject, o.Took, maxLatency)
		}
		switch o.Code {
		case 250:
			accepted = append(accepted, subject)
		case 451:
			refused = append(refused, subject)
			if !strings.HasPrefix(o.Msg, "4.3.0") {
				t.Errorf("%s: 451 text %q, want enhanced code 4.3.0", subject, o.Msg)
			}
		default:
			t.Errorf("%s: reply %d %q at %s (%v), want 250 or 451", subject, o.Code, o.Msg, o.Stage, o.Err)
		}
		return o
	}

	// Phase A: backend down. The queue holds queueSize requests (queued or
	// being retried), then every message gets 451.
	const phaseA = 15
	for i := 0; i < phaseA; i++ {
		send("down", i)
	}
	okA, refusedA := len(accepted), len(refused)
	t.Logf("backend down: %d × 250, %d × 451, slowest reply %s", okA, refusedA, slowest.Round(time.Millisecond))
	if okA < 1 || okA > queueSize {
		t.Errorf("backend down: %d messages got 250, want between 1 and queue_size %d", okA, queueSize)
	}
	if refusedA != phaseA-okA {
		t.Errorf("backend down: %d × 451 of %d refused", refusedA, phaseA-okA)
	}
	if refusedA == 0 {
		t.Fatalf("the full queue never produced a 451")
	}

	// Phase B: the backend comes up; the queue drains.
	sink := relSink(t, sinkPort)
	drainStart := time.Now()
	relWaitAll(t, "email.subject", accepted, 30*time.Second, 100*time.Millisecond, 0, sink.out)
	drained := time.Since(drainStart)
	// The sink wrote the records before it answered the exporter: give the
	// exporter a moment to see the answers and free the queue.
	time.Sleep(500 * time.Millisecond)

	// Phase C: new messages get 250 again.
	const phaseC = 10
	for i := 0; i < phaseC; i++ {
		send("up", i)
	}
	okC := len(accepted) - okA
	if okC != phaseC {
		t.Errorf("backend up again: %d of %d messages got 250", okC, phaseC)
	}
	ids, total := relWaitAll(t, "email.subject", accepted, 30*time.Second, 100*time.Millisecond, time.Second, sink.out)
	rc := relCompare(accepted, ids, total)
	tl.exported(total)
	relReport(t, "sent=%d 250=%d 4xx=%d exported=%d duplicates=%d lost=%d unexpected=%d (queue_size %d; down: %d×250 %d×451; drained in %s; up: %d×250; slowest reply %s)",
		phaseA+phaseC, len(accepted), len(refused), rc.Exported, rc.Duplicates, rc.Lost, rc.Unexpected,
		queueSize, okA, refusedA, drained.Round(time.Millisecond), okC, slowest.Round(time.Millisecond))
	relVerdict(t, rc, false, "exported although the client got 451 (the sender will retry: a duplicate)")
}

// ---------------------------------------------------------------- 4. shutdown under load

func TestShutdownUnderLoad(t *testing.T) {
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/rel_shutdown:
    address: 127.0.0.1
    port: %d
    id: 404
    name: rel_shutdown
    tags: [reliability, shutdown]
    timeout: 10
    data_timeout: 60
exporters:
%s
service:
%s  pipelines:
    logs/rel_shutdown:
      receivers: [smtp/rel_shutdown]
      exporters: [file]
`, port, relFileExporter(out), quietTelemetry))}
	})
	tl := counts(t)
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)

	type result struct {
		kind, subject string
		o             relOutcome
		after         string // what the session got after its message (slow clients)
		afterCode     int
	}
	var mu sync.Mutex
	var results []result
	add := func(r result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		tl.reply(r.o.Code)
	}
	var termAt atomic.Int64 // unix nanos of the SIGTERM

	// Slow senders: in DATA when SIGTERM comes, 16 chunks 250 ms apart.
	const slowClients, fastClients, idleClients = 6, 3, 3
	inData := make(chan struct{}, slowClients)
	var wg sync.WaitGroup
	for i := 0; i < slowClients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			subject := fmt.Sprintf("shut-%s-slow-%d", tag, i)
			cl, code, err := relDial(c.addr())
			if err != nil {
				add(result{kind: "slow", subject: subject, o: relOutcome{Code: code, Stage: "connect", Err: err}})
				inData <- struct{}{}
				return
			}
			defer cl.close()
			if err := cl.hello("slow.example.com", nil); err != nil {
				add(result{kind: "slow", subject: subject, o: relOutcome{Stage: "ehlo", Err: err}})
				inData <- struct{}{}
				return
			}
			once := sync.Once{}
			o := cl.send(relSend{From: "slow@example.com", To: "ops@example.org", Msg: relMessage(subject, 16*1024),
				Chunks: 16, ChunkDelay: 250 * time.Millisecond, InData: func() { once.Do(func() { inData <- struct{}{} }) }})
			once.Do(func() { inData <- struct{}{} })
			r := result{kind: "slow", subject: subject, o: o}
			if o.Code == 250 {
				// The session ends after its message: 421 (or a close).
				code, msg, err := cl.next(10 * time.Second)
				r.afterCode = code
				r.after = fmt.Sprintf("%d %s %v", code, msg, err)
			}
			add(r)
		}(i)
	}
	// Idle sessions: EHLO done, waiting; they must get 421 at once.
	idleLatency := make([]time.Duration, idleClients)
	idleCode := make([]int, idleClients)
	idleText := make([]string, idleClients)
	for i := 0; i < idleClients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl, _, err := relDial(c.addr())
			if err != nil {
				idleCode[i] = -1
				return
			}
			defer cl.close()
			if err := cl.hello("idle.example.com", nil); err != nil {
				idleCode[i] = -1
				return
			}
			code, msg, _ := cl.next(20 * time.Second)
			idleCode[i], idleText[i] = code, msg
			if at := termAt.Load(); at > 0 {
				idleLatency[i] = time.Since(time.Unix(0, at))
			} else {
				idleLatency[i] = -1 // before SIGTERM
			}
		}(i)
	}
	// Fast senders: back-to-back messages on one session until the server
	// ends it.
	var fastSent atomic.Int64
	stopFast := make(chan struct{})
	for i := 0; i < fastClients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl, _, err := relDial(c.addr())
			if err != nil {
				return
			}
			defer cl.close()
			if err := cl.hello("fast.example.com", nil); err != nil {
				return
			}
			for j := 0; j < 5000; j++ {
				select {
				case <-stopFast:
					return
				default:
				}
				subject := fmt.Sprintf("shut-%s-fast-%d-%04d", tag, i, j)
				o := cl.send(relSend{From: "fast@example.com", To: "ops@example.org", Msg: relMessage(subject, 2048)})
				add(result{kind: "fast", subject: subject, o: o})
				fastSent.Add(1)
				if o.Code != 250 {
					return
				}
			}
		}(i)
	}

	// Wait until every slow client is in DATA and the fast ones are going.
	deadline := time.After(15 * time.Second)
	for i := 0; i < slowClients; i++ {
		select {
		case <-inData:
		case <-deadline:
			t.Fatalf("slow clients not in DATA after 15s")
		}
	}
	for fastSent.Load() < 30 {
		select {
		case <-deadline:
			t.Fatalf("fast clients sent only %d messages in 15s", fastSent.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(800 * time.Millisecond) // the slow clients have ~3 s of DATA left
	termAt.Store(time.Now().UnixNano())
	took, exitErr := c.sigterm(45 * time.Second)
	close(stopFast)
	wgDone := make(chan struct{})
	go func() { wg.Wait(); close(wgDone) }()
	select {
	case <-wgDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("clients still running 60s after SIGTERM")
	}
	if exitErr != nil {
		t.Errorf("collector after SIGTERM: %v (took %s)", exitErr, took)
	}

	// Everything the collector wrote is on disk now (it has exited).
	recs, err := readRecords(c.out)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range recs {
		ids[str(r.Attrs, "email.subject")]++
	}
	var accepted []string
	byKind := map[string]map[string]int{}
	for _, r := range results {
		class := "none"
		switch {
		case r.o.Code == 250:
			class = "250"
			accepted = append(accepted, r.subject)
		case r.o.Code == 421:
			class = "421"
		case r.o.Code >= 400 && r.o.Code < 500:
			class = "4xx"
		case r.o.Code >= 500:
			class = "5xx"
		}
		if byKind[r.kind] == nil {
			byKind[r.kind] = map[string]int{}
		}
		byKind[r.kind][class]++
		if r.kind == "fast" && r.o.Code != 250 {
			t.Logf("fast %s: %d %q at %s (%v)", r.subject, r.o.Code, r.o.Msg, r.o.Stage, r.o.Err)
		}
		if class == "5xx" {
			t.Errorf("%s: %d %q during shutdown, want 250, 4xx or no reply", r.subject, r.o.Code, r.o.Msg)
		}
		if r.kind == "slow" {
			// The contract: a session in DATA finishes its message (250,
			// the file exporter is up), then gets 421.
			if r.o.Code != 250 {
				t.Errorf("slow client in DATA at SIGTERM: %s got %d %q at %s (%v), want 250", r.subject, r.o.Code, r.o.Msg, r.o.Stage, r.o.Err)
			} else if r.afterCode != 421 && r.afterCode != 0 {
				t.Errorf("slow client %s after its 250: %s, want 421 or a close", r.subject, r.after)
			}
			t.Logf("slow %s: %d after %s; then %s", r.subject, r.o.Code, r.o.Took.Round(time.Millisecond), r.after)
		}
	}
	for i := range idleCode {
		t.Logf("idle session %d: reply %d %q, %s after SIGTERM", i, idleCode[i], idleText[i], idleLatency[i].Round(time.Millisecond))
		if idleCode[i] != 421 || !strings.HasPrefix(idleText[i], "4.3.2") {
			t.Errorf("idle session %d: got %d %q, want 421 4.3.2 on shutdown", i, idleCode[i], idleText[i])
		} else if idleLatency[i] < 0 || idleLatency[i] > 3*time.Second {
			t.Errorf("idle session %d: 421 %s after SIGTERM, want at once (< 3s)", i, idleLatency[i])
		}
	}
	rc := relCompare(accepted, ids, len(recs))
	tl.exported(len(recs))
	kinds := []string{}
	for k, m := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s=%v", k, m))
	}
	sort.Strings(kinds)
	relReport(t, "sent=%d 250=%d exported=%d duplicates=%d lost=%d exported-without-250=%d; by client %s; idle 421=%v; exit after %s",
		len(results), len(accepted), rc.Exported, rc.Duplicates, rc.Lost, rc.Unexpected, strings.Join(kinds, " "), idleCode, took.Round(time.Millisecond))
	relVerdict(t, rc, true, "exported without a 250 (the pipeline took them, so the contract says 250; the sender will retry → duplicates)")
}

// ---------------------------------------------------------------- 4b. shutdown with a blocked pipeline

// TestShutdownBlockedPipeline: a session whose ConsumeLogs does not return
// (exporter without a queue retrying a down backend, default
// retry_on_failure: up to 5 minutes) must not hold the collector's shutdown
// indefinitely: the collector passes the receiver a shutdown context without
// a deadline, so the receiver bounds the drain itself (10 s) and the client
// hears 421, never 250.
func TestShutdownBlockedPipeline(t *testing.T) {
	closed := freePort(t)
	c := startCollector(t, func(t *testing.T, dir string, port int, _ string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/rel_blocked:
    address: 127.0.0.1
    port: %d
    name: rel_blocked
    timeout: 10
    data_timeout: 30
exporters:
  otlp_http:
    endpoint: http://127.0.0.1:%d
    timeout: 2s
    sending_queue:
      enabled: false
service:
%s  pipelines:
    logs/rel_blocked:
      receivers: [smtp/rel_blocked]
      exporters: [otlp_http]
`, port, closed, quietTelemetry))}
	})
	tl := counts(t)
	done := make(chan relOutcome, 1)
	go func() {
		done <- relSendOne(c.addr(), nil, relSend{From: "blk@example.com", To: "ops@example.org", Msg: relMessage("blocked-pipeline", 256)})
	}()
	time.Sleep(2 * time.Second) // the message is in ConsumeLogs, the exporter retrying
	const bound = 30 * time.Second
	took, exitErr := c.sigterm(bound)
	var o relOutcome
	select {
	case o = <-done:
	case <-time.After(40 * time.Second):
		t.Fatalf("client still waiting 40s after SIGTERM")
	}
	tl.reply(o.Code)
	relReport(t, "sent=1 reply=%d %q (%v) after %s; collector exit after SIGTERM: %s (%v)", o.Code, o.Msg, o.Err, o.Took.Round(time.Millisecond), took.Round(time.Millisecond), exitErr)
	if exitErr != nil {
		t.Errorf("collector after SIGTERM: %v: a session blocked in ConsumeLogs holds the shutdown", exitErr)
	}
	if o.Code/100 != 4 {
		t.Errorf("got %d %q for a message the backend never took, want 4xx", o.Code, o.Msg)
	}
}

// ---------------------------------------------------------------- 5. Postfix relays through a crash

func TestPostfixRelayRetry(t *testing.T) {
	if why := relPostfixUnavailable(); why != "" {
		t.Skipf("Postfix cannot run here: %s", why)
	}
	n := relEnvInt("RELIABILITY_POSTFIX_N", 300)
	src := need(t, "smtp-source", "/usr/sbin/smtp-source", "/usr/lib/postfix/sbin/smtp-source")
	tl := counts(t)

	// The receiver keeps its port across the restart: it is Postfix's relayhost.
	dir := t.TempDir()
	port := freePort(t)
	outs := []string{filepath.Join(dir, "records-1.jsonl"), filepath.Join(dir, "records-2.jsonl")}
	config := func(i int) []string {
		return []string{writeFile(t, filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i+1)), fmt.Sprintf(`receivers:
  smtp/rel_postfix:
    address: 127.0.0.1
    port: %d
    id: 505
    name: rel_postfix
    tags: [reliability, postfix]
    timeout: 30
exporters:
%s
service:
%s  pipelines:
    logs/rel_postfix:
      receivers: [smtp/rel_postfix]
      exporters: [file]
`, port, relFileExporter(outs[i]), quietTelemetry))}
	}
	c1 := relStartAt(t, dir, port, "collector-1.log", config(0))
	c1.out = outs[0]
	pf := relNewPostfix(t, port)
	t.Logf("Postfix instance in %s: smtpd %s, relayhost [127.0.0.1]:%d", pf.dir, pf.addr(), port)

	// smtp-source submits n messages to Postfix; Postfix relays them to the
	// receiver while the test crashes the receiver.
	srcDone := make(chan cmdResult, 1)
	go func() {
		srcDone <- run(t, nil, src, "-s", "4", "-m", strconv.Itoa(n), "-l", "2048",
			"-f", "relay@example.com", "-t", "ops@example.org", pf.addr())
	}()
	killAt := n / 3
	deadline := time.Now().Add(60 * time.Second)
	var before int
	for {
		_, total, _ := relIDs("email.message_id", outs[0])
		before = total
		if total >= killAt || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c1.sigkill()
	killedAt := time.Now()
	t.Logf("SIGKILLed the receiver with %d of %d records exported", before, n)
	if before >= n {
		t.Logf("warning: every message was delivered before the crash; the retry path was not exercised")
	}
	time.Sleep(3 * time.Second) // Postfix meets a closed port and defers
	c2 := relStartAt(t, dir, port, "collector-2.log", config(1))
	c2.out = outs[1]
	restartedAt := time.Now()

	res := <-srcDone
	if res.Code != 0 {
		t.Fatalf("smtp-source into Postfix failed: %s", res)
	}
	// The messages Postfix accepted: its cleanup logs each message-id.
	want := pf.messageIDs(n, 20*time.Second)
	if len(want) != n {
		t.Errorf("Postfix logged %d distinct message-ids for %d submitted messages", len(want), n)
	}
	for i := 0; i < n; i++ {
		tl.reply(250) // smtp-source exit 0: Postfix answered 250 to all n
	}

	// Every message arrives (natural retries; one `postqueue -f` nudge if
	// they take long), and Postfix's queue empties.
	flushed := false
	var ids map[string]int
	var total int
	deadline = time.Now().Add(120 * time.Second)
	for {
		ids, total, _ = relIDs("email.message_id", outs...)
		missing := 0
		for _, w := range want {
			if ids[w] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		if !flushed && time.Since(restartedAt) > 45*time.Second {
			t.Logf("%d messages still missing 45s after the restart: postqueue -f", missing)
			pf.flush()
			flushed = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	delivered := time.Since(killedAt)
	var queue string
	empty := false
	for i := 0; i < 60 && !empty; i++ {
		if queue, empty = pf.queue(); !empty {
			time.Sleep(500 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	ids, total, _ = relIDs("email.message_id", outs...)
	rc := relCompare(want, ids, total)
	tl.exported(total)
	log := pf.maillogAll()
	sent := strings.Count(log, "status=sent")
	deferred := strings.Count(log, "status=deferred")
	relReport(t, "sent=%d (smtp-source → Postfix) relayed-250=%d deferred=%d exported=%d duplicates=%d lost=%d unexpected=%d queue-empty=%t; killed at %d exported, all delivered %s after the kill, flush-nudge=%t",
		n, sent, deferred, rc.Exported, rc.Duplicates, rc.Lost, rc.Unexpected, empty, before, delivered.Round(time.Millisecond), flushed)
	// A message exported whose 250 did not reach Postfix before the SIGKILL
	// is sent again: duplicates are allowed here.
	relVerdict(t, rc, false, "records with unknown message ids")
	if !empty {
		t.Errorf("Postfix queue not empty at the end:\n%s", queue)
	}
	if deferred == 0 && before < n {
		t.Errorf("Postfix logged no deferred delivery although the receiver was killed")
	}
}

// ---------------------------------------------------------------- 6. soak

func TestSoak(t *testing.T) {
	duration := relEnvDuration("RELIABILITY_SOAK", 2*time.Minute)
	workers := relEnvInt("RELIABILITY_SOAK_WORKERS", 8)
	warmup := 20 * time.Second
	if duration/6 < warmup {
		warmup = duration / 6
	}
	const maxMessageBytes = 512 << 10
	certs := makeCerts(t, t.TempDir())
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/rel_soak:
    address: 127.0.0.1
    port: %d
    id: 606
    name: rel_soak
    tags: [reliability, soak]
    timeout: 10
    data_timeout: 30
    max_message_bytes: %d
    service_root: %q
    tls:
      status: true
      cert_name: server.crt
      key_name: server.key
exporters:
%s
service:
%s  pipelines:
    logs/rel_soak:
      receivers: [smtp/rel_soak]
      exporters: [file]
`, port, maxMessageBytes, certs.Dir, relFileExporter(out), quietTelemetry))}
	})
	tl := counts(t)
	pid := c.cmd.Process.Pid
	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	// RSS every 3 s from start to end.
	type sample struct {
		at  time.Duration
		kib int64
	}
	var rssMu sync.Mutex
	var series []sample
	start := time.Now()
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	takeRSS := func() {
		if kib, err := relRSS(pid); err == nil {
			rssMu.Lock()
			series = append(series, sample{time.Since(start), kib})
			rssMu.Unlock()
		}
	}
	go func() {
		defer close(rssDone)
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		takeRSS()
		for {
			select {
			case <-stopRSS:
				return
			case <-tick.C:
				takeRSS()
			}
		}
	}()

	// The mix, per iteration of a worker.
	kinds := []struct {
		name   string
		weight int
		want   int // expected final reply (0: none)
	}{
		{"plain", 30, 250},
		{"starttls", 20, 250},
		{"multi", 10, 250}, // three messages in one session
		{"malformed", 10, 250},
		{"slow", 0, 250}, // dedicated workers, below
		{"abort", 12, 0}, // disconnect mid-DATA
		{"oversize", 3, 552},
		{"idle_quit", 5, -1}, // connect, EHLO, QUIT without mail
	}
	// The first slowWorkers workers only send slowly (5 chunks 300 ms
	// apart); the others pick a kind by weight.
	const slowWorkers = 2
	slowKind := -1
	totalWeight := 0
	for i, k := range kinds {
		totalWeight += k.weight
		if k.name == "slow" {
			slowKind = i
		}
	}
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var mu sync.Mutex
	var accepted []string
	notExpected := map[string]bool{} // subjects that must not be exported
	outcome := map[string]map[int]int{}
	var unexpectedReplies []string
	var seq atomic.Int64
	record := func(kind string, want int, subject string, o relOutcome) {
		mu.Lock()
		defer mu.Unlock()
		if outcome[kind] == nil {
			outcome[kind] = map[int]int{}
		}
		outcome[kind][o.Code]++
		if o.Code == 250 {
			accepted = append(accepted, subject)
		} else {
			notExpected[subject] = true
		}
		if o.Code != want && len(unexpectedReplies) < 20 {
			unexpectedReplies = append(unexpectedReplies, fmt.Sprintf("%s %s: %d %q at %s (%v) after %s", kind, subject, o.Code, o.Msg, o.Stage, o.Err, o.Took.Round(time.Millisecond)))
		}
		tl.reply(o.Code)
	}
	end := start.Add(duration)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + 1))
			for iter := 0; time.Now().Before(end) && iter < 100000; iter++ {
				pick := rng.Intn(totalWeight)
				k := kinds[0]
				for _, kk := range kinds {
					if pick < kk.weight {
						k = kk
						break
					}
					pick -= kk.weight
				}
				if w < slowWorkers {
					k = kinds[slowKind]
				}
				id := func() string { return fmt.Sprintf("soak-%s-%s-%06d", tag, k.name, seq.Add(1)) }
				s := relSend{From: "soak@example.com", To: "ops@example.org"}
				switch k.name {
				case "plain", "starttls":
					subject := id()
					s.Msg = relMessage(subject, 256+rng.Intn(4096))
					var cfg *tls.Config
					if k.name == "starttls" {
						cfg = tlsCfg
					}
					record(k.name, k.want, subject, relSendOne(c.addr(), cfg, s))
				case "malformed":
					subject := id()
					s.Msg = relMalformed(subject)
					record(k.name, k.want, subject, relSendOne(c.addr(), nil, s))
				case "slow":
					subject := id()
					s.Msg = relMessage(subject, 4096)
					s.Chunks, s.ChunkDelay = 5, 300*time.Millisecond
					record(k.name, k.want, subject, relSendOne(c.addr(), nil, s))
				case "abort":
					subject := id()
					s.Msg = relMessage(subject, 8192)
					s.Chunks, s.AbortAfter = 4, 2
					record(k.name, k.want, subject, relSendOne(c.addr(), nil, s))
				case "oversize":
					subject := id()
					s.Msg = relMessage(subject, maxMessageBytes+64<<10)
					record(k.name, k.want, subject, relSendOne(c.addr(), nil, s))
				case "multi":
					cl, code, err := relDial(c.addr())
					if err == nil {
						err = cl.hello("multi.example.com", nil)
					}
					if err != nil {
						record(k.name, k.want, id(), relOutcome{Code: code, Stage: "connect", Err: err})
						if cl != nil {
							cl.close()
						}
						continue
					}
					for j := 0; j < 3; j++ {
						subject := id()
						s.Msg = relMessage(subject, 1024)
						record(k.name, k.want, subject, cl.send(s))
					}
					cl.quit()
				case "idle_quit":
					if cl, _, err := relDial(c.addr()); err == nil {
						if err := cl.hello("idle.example.com", nil); err != nil {
							mu.Lock()
							unexpectedReplies = append(unexpectedReplies, "idle_quit EHLO: "+err.Error())
							mu.Unlock()
						}
						cl.quit()
					}
				}
				time.Sleep(time.Duration(10+rng.Intn(10)) * time.Millisecond)
			}
		}(w)
	}
	wg.Wait()
	loadEnd := time.Since(start)

	// Drain: every 250 exported (bounded), then the final RSS sample.
	ids, total := relWaitAll(t, "email.subject", accepted, 60*time.Second, time.Second, time.Second, c.out)
	takeRSS()
	close(stopRSS)
	<-rssDone

	rc := relCompare(accepted, ids, total)
	tl.exported(total)
	// The malformed messages were taken (250) and carry their parse problem.
	malformed, flagged := 0, 0
	if recs, err := readRecords(c.out); err == nil {
		for _, r := range recs {
			if strings.Contains(str(r.Attrs, "email.subject"), "-malformed-") {
				malformed++
				if has(r.Attrs, "email.parse_error") || has(r.Body, "parse_errors") {
					flagged++
				}
			}
		}
	}
	var outMiB int64
	if fi, err := os.Stat(c.out); err == nil {
		outMiB = fi.Size() >> 20
	}
	wrongExported := 0
	for id := range notExpected {
		wrongExported += ids[id]
	}

	// RSS rule: baseline = the highest sample of the warm-up window (the
	// first `warmup` of load); the final sample (after the load and the
	// drain) must be ≤ 1.5 × baseline + 16 MiB.
	rssMu.Lock()
	var baseline, peak int64
	var parts []string
	for _, s := range series {
		parts = append(parts, fmt.Sprintf("%ds:%dMiB", int(s.at.Seconds()), s.kib>>10))
		if s.at <= warmup && s.kib > baseline {
			baseline = s.kib
		}
		if s.kib > peak {
			peak = s.kib
		}
	}
	final := series[len(series)-1].kib
	rssMu.Unlock()
	limit := baseline*3/2 + 16<<10
	t.Logf("RSS series (every 3s): %s", strings.Join(parts, " "))
	var kindLines []string
	for _, k := range kinds {
		if m := outcome[k.name]; m != nil {
			kindLines = append(kindLines, fmt.Sprintf("%s=%v", k.name, m))
		}
	}
	relReport(t, "sent=%d 250=%d exported=%d duplicates=%d lost=%d exported-without-250=%d; load %s with %d workers; replies by kind %s; malformed exported %d (%d with a parse error); output %d MiB; RSS baseline %d MiB (max of first %s), peak %d MiB, final %d MiB, limit %d MiB",
		len(accepted)+len(notExpected), len(accepted), total, rc.Duplicates, rc.Lost, wrongExported,
		loadEnd.Round(time.Second), workers, strings.Join(kindLines, " "), malformed, flagged, outMiB, baseline>>10, warmup.Round(100*time.Millisecond), peak>>10, final>>10, limit>>10)
	if len(unexpectedReplies) > 0 {
		t.Errorf("replies other than expected (first %d): \n%s", len(unexpectedReplies), strings.Join(unexpectedReplies, "\n"))
	}
	if len(accepted) != total || rc.Lost > 0 || rc.Duplicates > 0 {
		t.Errorf("250 replies (%d) and exported records (%d) do not reconcile: lost %d %v, duplicates %d",
			len(accepted), total, rc.Lost, relFirst(rc.LostIDs), rc.Duplicates)
	}
	if wrongExported > 0 {
		t.Errorf("%d records exported for messages that did not get 250 (aborted or oversize)", wrongExported)
	}
	if baseline == 0 || final > limit {
		t.Errorf("RSS not bounded: final %d KiB > 1.5 × baseline %d KiB + 16 MiB", final, baseline)
	}
}

// ---------------------------------------------------------------- summary

// TestZZReliabilitySummary runs last (tests run in source order) and prints
// every scenario line together.
func TestZZReliabilitySummary(t *testing.T) {
	relSummaryMu.Lock()
	defer relSummaryMu.Unlock()
	fmt.Println("\n==== reliability summary ====")
	for _, l := range relSummary {
		fmt.Println(l)
	}
}
