// Command device2otel converts a device file of the SMTP push device (a YAML
// list of devices in the product's schema) into an OpenTelemetry Collector
// config for bin/otelcol-smtp.
//
//	go run ./cmd/device2otel devices.yaml > collector.yaml
//	go run ./cmd/device2otel - < devices.yaml > collector.yaml
//
// Each enabled smtp device becomes a receiver smtp/<name> and a pipeline
// logs/<name>; its pipelines become processors. See docs/devices.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
)

const defaultSpamScoreThreshold = 5.0

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("device2otel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	threshold := fs.Float64("spam-score-threshold", defaultSpamScoreThreshold,
		"spam_filter drops an email whose X-Spam-Score is above this number")
	telemetry := fs.String("telemetry-address", "",
		"host:port where the collector serves its own metrics (Prometheus, /metrics);\n"+
			"empty turns them off, so that several converted configs can run side by side")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: device2otel [--spam-score-threshold N] [--telemetry-address HOST:PORT] <devices.yaml | ->\n\n"+
			"Converts a list of SMTP devices into a collector config for bin/otelcol-smtp,\n"+
			"written to stdout. \"-\" reads the device file from stdin.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "device2otel version %s\n", programVersion())
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if math.IsNaN(*threshold) || math.IsInf(*threshold, 0) {
		fmt.Fprintf(stderr, "device2otel: --spam-score-threshold must be a number, got %v\n", *threshold)
		return 2
	}
	telemetryAddr, err := parseTelemetryAddress(*telemetry)
	if err != nil {
		fmt.Fprintf(stderr, "device2otel: --telemetry-address: %v\n", err)
		return 2
	}

	path := fs.Arg(0)
	var (
		data   []byte
		source = filepath.Base(path)
	)
	if path == "-" {
		source = "stdin"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "device2otel: %v\n", err)
		return 1
	}

	devices, err := parseDevices(data, source)
	if err != nil {
		fmt.Fprintf(stderr, "device2otel: %v\n", indentLines(err.Error()))
		return 1
	}
	out, warnings, err := convert(devices, options{source: source, spamScoreThreshold: *threshold, telemetry: telemetryAddr})
	for _, w := range warnings {
		fmt.Fprintf(stderr, "device2otel: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "device2otel: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "device2otel: %v\n", err)
		return 1
	}
	return 0
}

// version is set at build time (make build: -ldflags "-X main.version=...",
// from the VERSION file).
var version = ""

// programVersion is the build-time version, else what the Go toolchain
// stamped into the binary (a module version or a VCS revision).
func programVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "devel+" + s.Value
			}
		}
	}
	return "devel"
}

// telemetryAddress is where the collector serves its own metrics; the zero
// value means off.
type telemetryAddress struct {
	host string
	port int
}

func (a telemetryAddress) on() bool { return a.port != 0 }

// parseTelemetryAddress reads --telemetry-address: "" (off) or host:port.
func parseTelemetryAddress(s string) (telemetryAddress, error) {
	if s == "" {
		return telemetryAddress{}, nil
	}
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return telemetryAddress{}, fmt.Errorf("want host:port, e.g. 127.0.0.1:8889, got %q", s)
	}
	if host == "" {
		return telemetryAddress{}, fmt.Errorf("give a host, e.g. 127.0.0.1:%s (0.0.0.0 to serve the network), got %q", portText, s)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return telemetryAddress{}, fmt.Errorf("the port must be between 1 and 65535, got %q", portText)
	}
	return telemetryAddress{host: host, port: port}, nil
}

// indentLines puts each further error of a joined error under the first.
func indentLines(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, "device2otel: "...)
		}
	}
	return string(out)
}
