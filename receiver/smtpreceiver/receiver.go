package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

type smtpReceiver struct {
	set  receiver.Settings
	cfg  *Config
	next consumer.Logs
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*smtpReceiver, error) {
	return &smtpReceiver{set: set, cfg: cfg, next: next}, nil
}

func (r *smtpReceiver) Start(context.Context, component.Host) error { return nil }
func (r *smtpReceiver) Shutdown(context.Context) error           { return nil }
