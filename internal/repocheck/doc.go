// Package repocheck has no code of its own: its tests keep the repository's
// loose parts consistent with each other, where no Go package owns them (the
// examples' ports, the Makefile's help against the README, the version in
// VERSION and builder-config.yaml, the LICENSE file).
package repocheck
