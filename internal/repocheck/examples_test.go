package repocheck

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const repoRoot = "../.."

// runTogether are the examples docs/devices.md says run side by side: the
// spec's five and the metrics example.
var runTogether = []string{"basic.yaml", "secure.yaml", "high-volume.yaml", "submission.yaml", "pipeline.yaml", "metrics.yaml"}

// notStandalone are example files that are not collector configs of their own.
var notStandalone = map[string]bool{"devices.yaml": true, "exporters-file.yaml": true}

// collectorDefaultTelemetry is where the collector serves its own metrics
// when a config says nothing about them.
const collectorDefaultTelemetry = "127.0.0.1:8888"

type exampleConfig struct {
	Receivers map[string]struct {
		Address *string `yaml:"address"`
		Port    int     `yaml:"port"`
	} `yaml:"receivers"`
	Service struct {
		Telemetry struct {
			Metrics struct {
				Level   string `yaml:"level"`
				Readers []struct {
					Pull struct {
						Exporter struct {
							Prometheus struct {
								Host string `yaml:"host"`
								Port int    `yaml:"port"`
							} `yaml:"prometheus"`
						} `yaml:"exporter"`
					} `yaml:"pull"`
				} `yaml:"readers"`
			} `yaml:"metrics"`
		} `yaml:"telemetry"`
	} `yaml:"service"`
}

// telemetryAddresses are the addresses a config's collector binds for its
// own metrics: none when they are off, the collector's default when the
// config does not say.
func (c exampleConfig) telemetryAddresses() []string {
	m := c.Service.Telemetry.Metrics
	if m.Level == "none" {
		return nil
	}
	if len(m.Readers) == 0 {
		return []string{collectorDefaultTelemetry}
	}
	var out []string
	for _, r := range m.Readers {
		p := r.Pull.Exporter.Prometheus
		out = append(out, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)))
	}
	return out
}

// smtpPorts are the SMTP ports of a config, with their receiver ids.
func (c exampleConfig) smtpPorts() map[int]string {
	out := map[int]string{}
	for id, r := range c.Receivers {
		if r.Port != 0 {
			out[r.Port] = id
		}
	}
	return out
}

func loadExamples(t *testing.T) map[string]exampleConfig {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "examples", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]exampleConfig{}
	for _, f := range files {
		name := filepath.Base(f)
		if notStandalone[name] {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var c exampleConfig
		require.NoError(t, yaml.Unmarshal(data, &c), name)
		out[name] = c
	}
	return out
}

// TestExamplesRunSideBySide: two collectors binding the same telemetry
// address cannot run together (the second dies at start), so no two
// examples share one and only examples/metrics.yaml uses the collector's
// default; the examples documented as running together have distinct SMTP
// ports too.
func TestExamplesRunSideBySide(t *testing.T) {
	examples := loadExamples(t)
	names := make([]string, 0, len(examples))
	for n := range examples {
		names = append(names, n)
	}
	sort.Strings(names)

	telemetryUsers := map[string]string{}
	for _, name := range names {
		for _, addr := range examples[name].telemetryAddresses() {
			if addr == collectorDefaultTelemetry && name != "metrics.yaml" {
				t.Errorf("%s: serves the collector's metrics on %s, the default that examples/metrics.yaml uses; give it its own port or turn them off (service.telemetry.metrics.level: none)", name, addr)
			}
			if other, dup := telemetryUsers[addr]; dup {
				t.Errorf("%s and %s both serve the collector's metrics on %s", other, name, addr)
			}
			telemetryUsers[addr] = name
		}
	}

	smtpUsers := map[int]string{}
	for _, name := range runTogether {
		c, ok := examples[name]
		require.True(t, ok, "examples/%s is missing", name)
		for port, id := range c.smtpPorts() {
			if other, dup := smtpUsers[port]; dup {
				t.Errorf("%s (%s) and %s both listen on SMTP port %d", name, id, other, port)
			}
			smtpUsers[port] = fmt.Sprintf("%s (%s)", name, id)
		}
	}
	assert.Len(t, smtpUsers, len(runTogether), "one SMTP port per example")
}
