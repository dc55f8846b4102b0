// Package smtpreceiver implements an OpenTelemetry Collector receiver that
// accepts email over SMTP and turns every accepted message into one log record.
package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
