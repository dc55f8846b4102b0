//go:build scale

package e2e

// Fleet tests (`make scale`): the deployments of docs/deploy.md, run for real
// on loopback.
//
//  1. Balancer failover: HAProxy in TCP mode with send-proxy-v2 and health
//     checks in front of two receivers; a throwaway Postfix relays messages
//     through it while one receiver is SIGKILLed and later restarted. Every
//     message is delivered, duplicates are counted, and the records carry
//     the original client's address (Postfix's, 127.0.0.2), not HAProxy's.
//  2. Agent → gateway: an agent (smtp receiver → otlp_grpc exporter with a
//     file_storage sending queue) in front of a gateway (otlp receiver →
//     file). The gateway is SIGKILLed for 10 s during load, then the agent
//     once; every message that got a 250 reaches the gateway's file.
//
// TestZZScaleSummary prints the table (case, sent, acked, delivered, lost,
// duplicates); any loss fails its test, so `go test` exits non-zero.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scaleRow is one line of the summary table.
type scaleRow struct {
	Case                                     string
	Sent, Acked, Delivered, Lost, Duplicates int
}

var (
	scaleMu   sync.Mutex
	scaleRows []scaleRow
)

func scaleRecord(r scaleRow) {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	scaleRows = append(scaleRows, r)
}

// ---------------------------------------------------------------- HAProxy

// haproxy is a foreground HAProxy with an admin socket for its server states.
type haproxy struct {
	t      *testing.T
	cmd    *exec.Cmd
	sock   string
	port   int
	log    string
	exited chan struct{}
}

// startHAProxy balances 127.0.0.1:port over the backends (name → port),
// speaking PROXY protocol v2 to them and health-checking each every 500 ms.
func startHAProxy(t *testing.T, dir string, port int, backends map[string]int) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin = "/usr/sbin/haproxy"
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("haproxy is not installed (make scale installs it: apt-get install haproxy)")
		}
	}
	h := &haproxy{t: t, sock: filepath.Join(dir, "haproxy.sock"), port: port, log: filepath.Join(dir, "haproxy.log"), exited: make(chan struct{})}
	var servers strings.Builder
	for _, name := range []string{"a", "b"} {
		// check-send-proxy: the health check also starts with a PROXY
		// header, as the receivers require from a trusted proxy.
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%d send-proxy-v2 check check-send-proxy inter 500ms fall 2 rise 2\n", name, backends[name])
	}
	cfg := fmt.Sprintf(`global
    maxconn 512
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend smtp
    bind 127.0.0.1:%d
    default_backend receivers
backend receivers
    balance roundrobin
    # HAProxy connects to the receivers from 127.0.0.1, Postfix from 127.0.0.2:
    # the records must show 127.0.0.2.
    source 127.0.0.1
%s`, h.sock, port, servers.String())
	cfgPath := writeFile(t, filepath.Join(dir, "haproxy.cfg"), cfg)
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	logf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-f", cfgPath, "-db")
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	go func() { _ = h.cmd.Wait(); logf.Close(); close(h.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.exited
		}
	})
	return h
}

// states returns each backend server's status (UP, DOWN, ...) from the
// admin socket's `show stat` CSV.
func (h *haproxy) states() (map[string]string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(c)
	var status int = -1
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if strings.HasPrefix(sc.Text(), "# ") {
			for i, name := range strings.Split(strings.TrimPrefix(sc.Text(), "# "), ",") {
				if name == "status" {
					status = i
				}
			}
			continue
		}
		if status >= 0 && len(f) > status && f[0] == "receivers" && f[1] != "BACKEND" {
			out[f[1]] = f[status]
		}
	}
	return out, sc.Err()
}

// waitState waits (bounded) until the server's status starts with want.
func (h *haproxy) waitState(server, want string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if s, err := h.states(); err == nil && strings.HasPrefix(s[server], want) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := h.states()
	h.t.Logf("haproxy: server %s not %s after %s: %v %v", server, want, limit, s, err)
	return false
}

// ---------------------------------------------------------------- 1. balancer failover

// proxiedReceiverConfig is a receiver behind the balancer: PROXY protocol
// from 127.0.0.1 (HAProxy), records to out.
func proxiedReceiverConfig(t *testing.T, dir, name string, port int, out string) []string {
	return []string{writeFile(t, filepath.Join(dir, name+".yaml"), fmt.Sprintf(`receivers:
  smtp/%s:
    address: 127.0.0.1
    port: %d
    timeout: 30
    proxy_protocol:
      enabled: true
      trusted_proxies: [127.0.0.1/32]
      timeout: 5
exporters:
%s
service:
%s  pipelines:
    logs:
      receivers: [smtp/%s]
      exporters: [file]
`, name, port, relFileExporter(out), quietTelemetry, name))}
}

func TestScaleBalancerFailover(t *testing.T) {
	if why := relPostfixUnavailable(); why != "" {
		t.Fatalf("Postfix cannot run here: %s", why)
	}
	n := relEnvInt("SCALE_N", 300)
	src := need(t, "smtp-source", "/usr/sbin/smtp-source", "/usr/lib/postfix/sbin/smtp-source")
	dir := t.TempDir()
	ports := map[string]int{"a": freePort(t), "b": freePort(t)}
	outs := map[string]string{
		"a1": filepath.Join(dir, "a-1.jsonl"), "a2": filepath.Join(dir, "a-2.jsonl"), "b": filepath.Join(dir, "b.jsonl"),
	}
	a := relStartAt(t, dir, ports["a"], "a-1.log", proxiedReceiverConfig(t, dir, "a", ports["a"], outs["a1"]))
	relStartAt(t, dir, ports["b"], "b.log", proxiedReceiverConfig(t, dir, "b", ports["b"], outs["b"]))
	hp := startHAProxy(t, dir, freePort(t), ports)
	for _, s := range []string{"a", "b"} {
		if !hp.waitState(s, "UP", 15*time.Second) {
			t.Fatalf("HAProxy does not see receiver %s UP (its health check goes through PROXY protocol)\n%s", s, readTail(hp.log))
		}
	}

	// Postfix relays to HAProxy and connects from 127.0.0.2: that is the
	// client address the records must carry.
	pf := relNewPostfix(t, hp.port)
	// One connection per delivery (no connection cache), so that the
	// balancer spreads deliveries over both receivers.
	if out, err := pf.run("postconf", "-c", pf.confDir, "-e", "smtp_bind_address=127.0.0.2", "smtp_connection_cache_on_demand=no"); err != nil {
		t.Fatalf("postconf smtp_bind_address: %v %s", err, out)
	}
	if out, err := pf.run("postfix", "-c", pf.confDir, "reload"); err != nil {
		t.Fatalf("postfix reload: %v %s", err, out)
	}
	time.Sleep(time.Second) // the reload reaches the smtp clients

	// Two thirds of the messages go in while a is killed and restarted, the
	// last third once it is back in rotation.
	first := n * 2 / 3
	submit := func(count int) cmdResult {
		return run(t, nil, src, "-s", "4", "-m", strconv.Itoa(count), "-l", "2048",
			"-f", "relay@example.com", "-t", "ops@example.org", pf.addr())
	}
	srcDone := make(chan cmdResult, 1)
	go func() { srcDone <- submit(first) }()
	all := []string{outs["a1"], outs["a2"], outs["b"]}
	waitExported(all, n/4, 60*time.Second)
	a.sigkill()
	_, before, _ := relIDs("email.message_id", all...)
	t.Logf("SIGKILLed receiver a with %d of %d records exported", before, n)
	down := hp.waitState("a", "DOWN", 10*time.Second)
	time.Sleep(5 * time.Second) // b alone carries the load
	relStartAt(t, dir, ports["a"], "a-2.log", proxiedReceiverConfig(t, dir, "a", ports["a"], outs["a2"]))
	up := hp.waitState("a", "UP", 15*time.Second)

	if res := <-srcDone; res.Code != 0 {
		t.Fatalf("smtp-source into Postfix failed: %s", res)
	}
	if res := submit(n - first); res.Code != 0 {
		t.Fatalf("smtp-source into Postfix failed: %s", res)
	}
	want := pf.messageIDs(n, 20*time.Second)
	if len(want) != n {
		t.Errorf("Postfix logged %d distinct message-ids for %d submitted messages", len(want), n)
	}
	ids, total := relWaitAll(t, "email.message_id", want, 120*time.Second, 250*time.Millisecond, 2*time.Second, all...)
	rc := relCompare(want, ids, total)

	// Where the records came from, and from whom.
	perFile := map[string]int{}
	clients := map[string]int{}
	for name, p := range outs {
		recs, err := readRecords(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		perFile[name] = len(recs)
		for _, r := range recs {
			clients[str(r.Attrs, "client.address")]++
		}
	}
	log := pf.maillogAll()
	relayed := strings.Count(log, "status=sent")
	deferred := strings.Count(log, "status=deferred")
	t.Logf("records per receiver: a before kill %d, a after restart %d, b %d; client.address: %v; Postfix sent=%d deferred=%d; HAProxy saw a DOWN=%t, UP again=%t",
		perFile["a1"], perFile["a2"], perFile["b"], clients, relayed, deferred, down, up)
	scaleRecord(scaleRow{"balancer failover (HAProxy, Postfix, SIGKILL a)", n, relayed, len(want) - rc.Lost, rc.Lost, rc.Duplicates})

	relVerdict(t, rc, false, "records with unknown message ids")
	if clients["127.0.0.2"] != total {
		t.Errorf("records must carry Postfix's address 127.0.0.2 (from the PROXY header), got %v", clients)
	}
	if perFile["a1"] == 0 || perFile["b"] == 0 || perFile["a2"] == 0 {
		t.Errorf("the balancer should use both receivers, and a again after its restart: a %d, a restarted %d, b %d", perFile["a1"], perFile["a2"], perFile["b"])
	}
	if !down || !up {
		t.Errorf("HAProxy's health check should take a out of rotation and back in (down %t, up %t)", down, up)
	}
	if queue, empty := pf.queue(); !empty {
		t.Errorf("Postfix queue not empty at the end:\n%s", queue)
	}
}

// waitExported waits (bounded) until the files hold at least n records.
func waitExported(paths []string, n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, total, _ := relIDs("email.message_id", paths...); total >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

// ---------------------------------------------------------------- 2. agent → gateway

func gatewayConfig(t *testing.T, dir string, port int, out string) []string {
	return []string{writeFile(t, filepath.Join(dir, filepath.Base(out)+".yaml"), relOTLPSinkConfig("grpc", port, out))}
}

// agentConfig: smtp receiver → otlp_grpc exporter whose sending queue is on
// file_storage, so a 250 means "on the agent's disk"; it retries for ever.
func agentConfig(t *testing.T, dir string, port, gatewayPort int, queue string) []string {
	return []string{writeFile(t, filepath.Join(dir, "agent.yaml"), fmt.Sprintf(`receivers:
  smtp/agent:
    address: 127.0.0.1
    port: %d
    timeout: 30
extensions:
  file_storage/queue:
    directory: %s
    create_directory: true
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%d
    tls:
      insecure: true
    timeout: 5s
    sending_queue:
      enabled: true
      storage: file_storage/queue
      queue_size: 100000
      block_on_overflow: false
      num_consumers: 4
    retry_on_failure:
      enabled: true
      initial_interval: 200ms
      max_interval: 1s
      max_elapsed_time: 0s
service:
%s  extensions: [file_storage/queue]
  pipelines:
    logs:
      receivers: [smtp/agent]
      exporters: [otlp_grpc]
`, port, queue, gatewayPort, quietTelemetry))}
}

func TestScaleAgentGateway(t *testing.T) {
	n := relEnvInt("SCALE_AGENT_N", 600)
	dir := t.TempDir()
	queue := filepath.Join(dir, "queue")
	gwPort, agentPort := freePort(t), freePort(t)
	var gwOuts []string
	gwStart := func() *collector {
		out := filepath.Join(dir, fmt.Sprintf("gateway-%d.jsonl", len(gwOuts)+1))
		gwOuts = append(gwOuts, out)
		return relStartAt(t, dir, gwPort, fmt.Sprintf("gateway-%d.log", len(gwOuts)), gatewayConfig(t, dir, gwPort, out))
	}
	agentStarts := 0
	agentStart := func() *collector {
		agentStarts++
		return relStartAt(t, dir, agentPort, fmt.Sprintf("agent-%d.log", agentStarts), agentConfig(t, dir, agentPort, gwPort, queue))
	}
	gw := gwStart()
	agent := agentStart()

	// Clients send n messages, each retried like an MTA would until it gets
	// a 250 (connection refused while the agent is down, 4xx, a lost reply).
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var mu sync.Mutex
	acked := map[string]bool{}
	attempts := 0
	progress := make(chan int, n)
	var wg sync.WaitGroup
	const workers = 4
	deadline := time.Now().Add(4 * time.Minute)
	addr := fmt.Sprintf("127.0.0.1:%d", agentPort)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("agw-%s-%04d", tag, i)
				for time.Now().Before(deadline) {
					o := relSendOne(addr, nil, relSend{From: "agent@example.com", To: "ops@example.org", Msg: relMessage(id, 1024)})
					mu.Lock()
					attempts++
					if o.Code == 250 {
						acked[id] = true
					}
					mu.Unlock()
					if o.Code == 250 {
						progress <- i
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				// About 20 messages a second in all: the load lasts across
				// both crashes instead of finishing before them.
				time.Sleep(200 * time.Millisecond)
			}
		}(w)
	}
	waitProgress := func(k int) {
		for done := 0; done < k; done++ {
			select {
			case <-progress:
			case <-time.After(60 * time.Second):
				t.Fatalf("no progress: %d of %d messages acked", done, k)
			}
		}
	}

	waitProgress(n / 4)
	gw.sigkill()
	t.Logf("SIGKILLed the gateway; 10 s down while the agent keeps answering 250 (its queue is on disk)")
	time.Sleep(10 * time.Second)
	gwStart()
	waitProgress(n / 4)
	agent.sigkill()
	mu.Lock()
	ackedAtKill := len(acked)
	mu.Unlock()
	t.Logf("SIGKILLed the agent with %d of %d messages acked; restarting it on the same queue directory", ackedAtKill, n)
	if ackedAtKill >= n {
		t.Errorf("the agent was killed after the load had ended: the crash under load was not exercised")
	}
	time.Sleep(2 * time.Second)
	agentStart()
	wg.Wait()

	mu.Lock()
	var want []string
	for id := range acked {
		want = append(want, id)
	}
	mu.Unlock()
	if len(want) != n {
		t.Errorf("%d of %d messages got a 250 within the time limit", len(want), n)
	}
	ids, total := relWaitAll(t, "email.subject", want, 120*time.Second, 250*time.Millisecond, 3*time.Second, gwOuts...)
	rc := relCompare(want, ids, total)
	t.Logf("agent → gateway: %d send attempts for %d messages (the rest refused or cut off while the agent was down); gateway files %v", attempts, n, gwOuts)
	scaleRecord(scaleRow{"agent → gateway (SIGKILL gateway 10 s, then agent)", n, len(want), len(want) - rc.Lost, rc.Lost, rc.Duplicates})
	relVerdict(t, rc, false, "records at the gateway that never got a 250")
}

// TestZZScaleSummary runs last (source order) and prints the table.
func TestZZScaleSummary(t *testing.T) {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n==== scale summary ====\n%-52s %6s %6s %9s %5s %10s\n", "case", "sent", "acked", "delivered", "lost", "duplicates")
	for _, r := range scaleRows {
		fmt.Fprintf(&b, "%-52s %6d %6d %9d %5d %10d\n", r.Case, r.Sent, r.Acked, r.Delivered, r.Lost, r.Duplicates)
	}
	fmt.Print(b.String())
}
