package config

import (
	"fmt"
	"net/url"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

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
	// OTLPEndpoint is where spans are exported, as a URL:
	// "http://collector:4317" (gRPC) or "http://collector:4318/v1/traces"
	// (HTTP); http:// sends in clear, https:// with TLS. Empty means no
	// exporter: a no-op tracer provider, and no tracing cost per request.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// OTLPProtocol is "grpc" or "http".
	OTLPProtocol string `koanf:"otlp_protocol"`
	// OTLPHeaders are sent with every export (an API key, for one).
	OTLPHeaders map[string]string `koanf:"otlp_headers"`
	// SampleRatio is the fraction of traces sampled when the client sent
	// no trace context (parent-based: a sampled parent is always
	// followed). Zero means the default, 1: to trace nothing, leave
	// otlp_endpoint empty.
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
	DefaultSampleRatio  = 1.0
)

func (c *Config) ensureObservabilityDefaults() {
	setDefault(&c.Admin.Listen, DefaultAdminListen)
	setDefault(&c.Telemetry.OTLPProtocol, DefaultOTLPProtocol)
	setDefault(&c.Telemetry.ServiceName, DefaultServiceName)
	setDefault(&c.Telemetry.SampleRatio, DefaultSampleRatio)
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
	if e := c.Telemetry.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("telemetry.otlp_endpoint", "want an http(s) URL such as http://collector:4317, got %q", e)
		}
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

// ParseShards is LoadShards for a YAML document in memory (the admin
// API's shard-map plan of a posted config): only the shard map is
// validated; other sections may be absent.
func ParseShards(doc []byte) ([]Shard, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(doc), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	shards, err := shardsOnly(k)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return shards, nil
}
