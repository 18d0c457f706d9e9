package config

// Admin is the admin listener: status, purge, reload, metrics.
type Admin struct {
	// Listen is the admin listener's address; it binds to loopback unless
	// configured otherwise.
	Listen string `koanf:"listen"`
	// TokenFile holds the bearer token; EDGECACHE_ADMIN_TOKEN overrides it.
	TokenFile string `koanf:"token_file"`
}

// Telemetry configures OpenTelemetry tracing.
type Telemetry struct {
	// OTLPEndpoint is where spans are exported; empty means no exporter
	// (a no-op tracer provider).
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// OTLPProtocol is "grpc" or "http".
	OTLPProtocol string `koanf:"otlp_protocol"`
	// SampleRatio is the fraction of traces sampled (parent-based).
	SampleRatio float64 `koanf:"sample_ratio"`
	// ServiceName is the service.name resource attribute.
	ServiceName string `koanf:"service_name"`
	// ResourceAttributes are added to the resource.
	ResourceAttributes map[string]string `koanf:"resource_attributes"`
}

// Log configures logging.
type Log struct {
	// Format is "json" or "text" ("" picks text on a terminal).
	Format string `koanf:"format"`
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Access logs every request (off by default: it costs on the hot path).
	Access bool `koanf:"access"`
}

// Defaults of the observability sections.
const (
	DefaultAdminListen  = "127.0.0.1:9090"
	DefaultOTLPProtocol = "grpc"
	DefaultServiceName  = "edgecache"
	DefaultLogLevel     = "info"
)

func (c *Config) ensureObservabilityDefaults() {
	setDefault(&c.Admin.Listen, DefaultAdminListen)
	setDefault(&c.Telemetry.OTLPProtocol, DefaultOTLPProtocol)
	setDefault(&c.Telemetry.ServiceName, DefaultServiceName)
	setDefault(&c.Log.Level, DefaultLogLevel)
}

func (c *Config) validateObservability(bad func(field, format string, args ...any)) {
	if err := checkHostPort(c.Admin.Listen); err != nil {
		bad("admin.listen", "%v", err)
	}
	switch c.Telemetry.OTLPProtocol {
	case "grpc", "http":
	default:
		bad("telemetry.otlp_protocol", `want "grpc" or "http", got %q`, c.Telemetry.OTLPProtocol)
	}
	if r := c.Telemetry.SampleRatio; r < 0 || r > 1 {
		bad("telemetry.sample_ratio", "want a fraction between 0 and 1, got %v", r)
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		bad("log.format", `want "json" or "text", got %q`, c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
}
