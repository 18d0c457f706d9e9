package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/edgecache/edgecache/internal/telemetry"
)

func TestNewTracing(t *testing.T) {
	ctx := context.Background()
	off, err := telemetry.NewTracing(ctx, telemetry.Export{}, "")
	if err != nil || off.Enabled {
		t.Fatalf("no endpoint: %+v %v", off, err)
	}
	if _, span := off.Provider.Tracer("t").Start(ctx, "x"); span.IsRecording() {
		t.Error("the no-op provider records")
	}
	for _, proto := range []string{"grpc", "http"} {
		// Exporters connect lazily: building one against a port nobody
		// listens on succeeds, and Shutdown returns.
		c := telemetry.Export{Endpoint: "http://127.0.0.1:1", Protocol: proto, SampleRatio: 1, ServiceName: "edgecache-test",
			ResourceAttributes: map[string]string{"deployment.environment.name": "test"}}
		tr, err := telemetry.NewTracing(ctx, c, "v0")
		if err != nil || !tr.Enabled {
			t.Fatalf("%s: %+v %v", proto, tr, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 0)
		_ = tr.Shutdown(sctx)
		cancel()
	}
	if _, err := telemetry.NewTracing(ctx, telemetry.Export{Endpoint: "collector:4317", Protocol: "grpc"}, ""); err == nil {
		t.Error("an endpoint without a scheme: want an error")
	}
}

func TestLogIDs(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.WrapLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	if telemetry.WrapLogger(log) != log {
		t.Error("wrapping twice wraps again")
	}
	exp := tracetest.NewInMemoryExporter()
	tr := telemetry.NewTracingWith(exp, nil, 1, true)

	conn := telemetry.ConnContext(context.Background(), (net.Conn)(nil))
	ctx, span := tr.Provider.Tracer("t").Start(conn, "req")
	log.InfoContext(ctx, "first request")
	log.Info("no context")
	telemetry.EndRequest(ctx)
	log.InfoContext(conn, "second request")
	span.End()

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	sc := trace.SpanContextFromContext(ctx)
	if lines[0]["trace_id"] != sc.TraceID().String() || lines[0]["span_id"] != sc.SpanID().String() {
		t.Errorf("first line %v, want trace %s", lines[0], sc.TraceID())
	}
	id0, _ := lines[0]["request_id"].(string)
	id2, _ := lines[2]["request_id"].(string)
	if !strings.HasSuffix(id0, "-1") || !strings.HasSuffix(id2, "-2") || id0[:len(id0)-2] != id2[:len(id2)-2] {
		t.Errorf("request ids %q, %q: want requests 1 and 2 of one connection", id0, id2)
	}
	if _, ok := lines[1]["request_id"]; ok {
		t.Errorf("a line without a request context has a request_id: %v", lines[1])
	}
	if _, ok := lines[2]["trace_id"]; ok {
		t.Errorf("an untraced line has a trace_id: %v", lines[2])
	}
	other := telemetry.RequestID(telemetry.ConnContext(context.Background(), nil))
	if other == "" || other[:strings.LastIndexByte(other, '-')] == id0[:len(id0)-2] {
		t.Errorf("a second connection's id %q is not its own (first: %q)", other, id0)
	}
}

func TestRequestIDCostsNothingUnlogged(t *testing.T) {
	ctx := telemetry.ConnContext(context.Background(), nil)
	if n := testing.AllocsPerRun(1000, func() { telemetry.EndRequest(ctx) }); n != 0 {
		t.Errorf("EndRequest allocates %v times", n)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	telemetry.NewLogger(&buf, "text", "warn").Info("hidden")
	telemetry.NewLogger(&buf, "text", "warn").Warn("shown")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "level=WARN msg=shown") {
		t.Errorf("text logger at warn wrote %q", s)
	}
	buf.Reset()
	telemetry.NewLogger(&buf, "", "debug").Debug("d") // not a terminal: JSON
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("default format wrote %q, want JSON", buf.String())
	}
}
