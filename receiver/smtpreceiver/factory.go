package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

// Defaults of the device schema (smtp-device spec) and of the extensions.
const (
	defaultAddress        = "0.0.0.0"
	defaultTimeout        = 15
	defaultWorkers        = 4
	defaultBufferSize     = 9000
	defaultStatsFrequency = 300

	defaultMaxMessageBytes         = 25 << 20
	defaultMaxRecipients           = 100
	defaultMaxLineLength           = 4096
	defaultDataTimeout             = 600
	defaultMinDataRate             = 256
	defaultPipelineTimeout         = 60
	defaultMaxConnections          = 1000
	defaultMaxConnectionsPerClient = 50
	defaultMaxAuthFailures         = 3
)

// NewFactory returns the factory of the smtp receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	conv := mailconv.DefaultOptions() // the converter owns its defaults
	return &Config{
		Status:                    true,
		Address:                   defaultAddress,
		Timeout:                   defaultTimeout,
		Workers:                   defaultWorkers,
		BufferSize:                defaultBufferSize,
		StatsFrequency:            defaultStatsFrequency,
		MaxMessageBytes:           defaultMaxMessageBytes,
		MaxRecipients:             defaultMaxRecipients,
		MaxLineLength:             defaultMaxLineLength,
		DataTimeout:               defaultDataTimeout,
		MinDataRate:               defaultMinDataRate,
		PipelineTimeout:           defaultPipelineTimeout,
		MaxConnections:            defaultMaxConnections,
		MaxConnectionsPerClient:   defaultMaxConnectionsPerClient,
		MaxAuthFailures:           defaultMaxAuthFailures,
		TrustedNetworks:           []string{"127.0.0.0/8", "::1/128"},
		ProxyProtocol:             ProxyProtocolConfig{Timeout: defaultProxyHeaderTimeout},
		BodyFormat:                conv.BodyFormat,
		MaxBodyBytes:              conv.MaxBodyBytes,
		MaxHeaderBytes:            conv.MaxHeaderBytes,
		MaxMIMEDepth:              conv.MaxDepth,
		MaxMIMEParts:              conv.MaxParts,
		MaxAttachmentContentBytes: conv.MaxAttachmentContentBytes,
		SenderAuth:                defaultSenderAuthConfig(),
		Reports:                   defaultReportsConfig(),
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
