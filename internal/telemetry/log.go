package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns the process logger: JSON, or text ("" picks text on a
// terminal, JSON otherwise), at level (debug, info, warn, error; "" is
// info). Its request-scoped lines carry request_id and trace_id (see
// WrapHandler).
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: ParseLevel(level)}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(WrapHandler(h))
}

// ParseLevel maps a config level name to a slog level (info when unknown:
// the config package validates the names).
func ParseLevel(level string) slog.Level {
	switch level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// WrapHandler returns a handler that adds, to every record logged with a
// request's context (InfoContext, WarnContext…), the request id
// (request_id) and, when the request is traced, trace_id and span_id.
// Records logged without such a context are passed on unchanged. Wrapping
// twice is a no-op.
func WrapHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(ctxHandler); ok {
		return h
	}
	return ctxHandler{h}
}

// WrapLogger is WrapHandler for a logger.
func WrapLogger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(ctxHandler); ok {
		return l
	}
	return slog.New(WrapHandler(l.Handler()))
}

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}
func (h ctxHandler) WithGroup(name string) slog.Handler { return ctxHandler{h.Handler.WithGroup(name)} }

// process names this process in request ids: random, so that ids of two
// gateways (or two runs) do not collide.
var process = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

var connSeq atomic.Uint64

// conn is the request-id slot of one connection.
type conn struct {
	id   string        // process-conn
	done atomic.Uint64 // requests finished on the connection
}

type connKey struct{}

// ConnContext is an http.Server ConnContext: it gives the connection its
// request-id slot. One allocation per connection, none per request.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	c := &conn{id: process + "-" + strconv.FormatUint(connSeq.Add(1), 10)}
	return context.WithValue(ctx, connKey{}, c)
}

// RequestID returns the id of the request whose context ctx is, or "" if
// ctx did not come from a connection prepared by ConnContext. It
// allocates: call it only to log.
func RequestID(ctx context.Context) string {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil {
		return ""
	}
	return c.id + "-" + strconv.FormatUint(c.done.Load()+1, 10)
}

// EndRequest moves the connection's slot on to the next request. Call it
// once per request, when nothing will log for it any more.
func EndRequest(ctx context.Context) {
	if c, _ := ctx.Value(connKey{}).(*conn); c != nil {
		c.done.Add(1)
	}
}
