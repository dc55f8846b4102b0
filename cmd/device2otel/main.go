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
	"os"
	"path/filepath"
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
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: device2otel [--spam-score-threshold N] <devices.yaml | ->\n\n"+
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
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if math.IsNaN(*threshold) || math.IsInf(*threshold, 0) {
		fmt.Fprintf(stderr, "device2otel: --spam-score-threshold must be a number, got %v\n", *threshold)
		return 2
	}

	path := fs.Arg(0)
	var (
		data   []byte
		err    error
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
	out, warnings, err := convert(devices, options{source: source, spamScoreThreshold: *threshold})
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
