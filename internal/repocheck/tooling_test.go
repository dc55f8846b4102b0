package repocheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// makeMention finds `make <target>` in the README and the docs.
var makeMention = regexp.MustCompile("`make ([a-z0-9][a-z0-9-]*)")

// TestMakeHelpListsDocumentedTargets: every target the README or docs/
// tell a reader to run is listed by `make help`.
func TestMakeHelpListsDocumentedTargets(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	require.NoError(t, err)
	mentioned := map[string][]string{}
	for _, f := range append([]string{filepath.Join(repoRoot, "README.md")}, docs...) {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range makeMention.FindAllStringSubmatch(string(data), -1) {
			mentioned[m[1]] = append(mentioned[m[1]], filepath.Base(f))
		}
	}
	require.Contains(t, mentioned, "test", "the README's `make test` is found")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeBin, "-s", "--no-print-directory", "help")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "  ") {
			if f := strings.Fields(line); len(f) > 0 {
				listed[f[0]] = true
			}
		}
	}
	targets := make([]string, 0, len(mentioned))
	for target := range mentioned {
		targets = append(targets, target)
	}
	sort.Strings(targets)
	for _, target := range targets {
		assert.True(t, listed[target], "`make %s` is mentioned in %v but `make help` does not list it", target, mentioned[target])
	}
}

// TestVersionHasOneSource: the distribution's version (builder-config.yaml,
// which becomes otelcol-smtp --version and the receiver's scope version)
// is the VERSION file's, and a real one.
func TestVersionHasOneSource(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	require.NoError(t, err)
	version := strings.TrimSpace(string(data))
	assert.Regexp(t, `^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`, version, "VERSION is a semantic version")
	assert.NotContains(t, version, "dev")

	data, err = os.ReadFile(filepath.Join(repoRoot, "builder-config.yaml"))
	require.NoError(t, err)
	var builder struct {
		Dist struct {
			Version string `yaml:"version"`
		} `yaml:"dist"`
	}
	require.NoError(t, yaml.Unmarshal(data, &builder))
	assert.Equal(t, version, builder.Dist.Version, "builder-config.yaml dist.version")
}

// TestLicense: the repository carries the Apache License 2.0, as the
// collector ecosystem does, in full.
func TestLicense(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	require.NoError(t, err)
	text := string(data)
	for _, want := range []string{
		"Apache License",
		"Version 2.0, January 2004",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
		"http://www.apache.org/licenses/LICENSE-2.0",
	} {
		assert.Contains(t, text, want)
	}
	assert.Greater(t, len(text), 11000, "the full text, not a pointer to it")
}
