//go:build wasip1

package edgecache

import (
	"time"
	"unsafe"
)

// Results of a hook.
const (
	// OK applies what the hook set.
	OK int32 = 0
	// Decline lets the built-in policy decide (from init: rejects the
	// config, and the plugin does not load).
	Decline int32 = 1
)

// Level is the level of a log line.
type Level int32

const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

var onInit func(config []byte) error

// OnInit registers f to receive the plugin's config, once per instance
// before any hook runs. Call it from an init function; an error from f
// rejects the config and the plugin fails to load.
func OnInit(f func(config []byte) error) { onInit = f }

// scratch is the buffer the host writes values into; it grows to the
// largest value read.
var scratch = make([]byte, 1024)

func bufPtr() (unsafe.Pointer, int32) {
	return unsafe.Pointer(unsafe.SliceData(scratch)), int32(len(scratch))
}

// read runs a buf/limit host function, growing the buffer and retrying
// when the value did not fit. ok is false when the host returned -1.
func read(get func(buf unsafe.Pointer, limit int32) int32) (string, bool) {
	n := get(bufPtr())
	if n < 0 {
		return "", false
	}
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		n = get(bufPtr())
	}
	return string(scratch[:n]), true
}

func str(s string) (unsafe.Pointer, int32) {
	return unsafe.Pointer(unsafe.StringData(s)), int32(len(s))
}

func readString(get func(buf unsafe.Pointer, limit int32) int32) string {
	s, _ := read(get)
	return s
}

// Config returns the plugin's config as given in the gateway config.
func Config() []byte { return []byte(readString(getConfig)) }

// Method returns the request method, e.g. "GET".
func Method() string { return readString(getMethod) }

// Scheme returns "http" or "https".
func Scheme() string { return readString(getScheme) }

// Host returns the request host, lower-case, without a default port.
func Host() string { return readString(getHost) }

// Path returns the escaped request path.
func Path() string { return readString(getPath) }

// Query returns the raw query string, without '?'.
func Query() string { return readString(getQuery) }

// Header returns the request header's values joined by ", ", and whether
// it is present.
func Header(name string) (string, bool) {
	np, nn := str(name)
	return read(func(buf unsafe.Pointer, limit int32) int32 { return getHeader(np, nn, buf, limit) })
}

// Status returns the origin's status code (response hook).
func Status() int { return int(getStatus()) }

// ResponseHeader returns the origin response header's values joined by
// ", ", and whether it is present (response hook).
func ResponseHeader(name string) (string, bool) {
	np, nn := str(name)
	return read(func(buf unsafe.Pointer, limit int32) int32 { return getResponseHeader(np, nn, buf, limit) })
}

// DefaultTTL returns the built-in policy's TTL for the response, and false
// when the built-in policy would not store it (response hook).
func DefaultTTL() (time.Duration, bool) {
	ms := getDefaultTTL()
	if ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// SetKey sets the whole cache key (key hook).
func SetKey(key string) { setKey(str(key)) }

// AddKeyPart appends '|' and part to the key: the built-in key, or the one
// SetKey set (key hook).
func AddKeyPart(part string) { addKeyPart(str(part)) }

// SetTTL stores the response, fresh for d (response hook).
func SetTTL(d time.Duration) { setTTL(d.Milliseconds()) }

// SetStaleWhileRevalidate lets the entry be served stale for d after its
// TTL while it is refreshed (response hook).
func SetStaleWhileRevalidate(d time.Duration) { setStaleWhileRevalidate(d.Milliseconds()) }

// SetStaleIfError lets the entry be served stale for d after its TTL when
// the origin fails (response hook).
func SetStaleIfError(d time.Duration) { setStaleIfError(d.Milliseconds()) }

// AddTag adds a surrogate key that a purge by tag removes (response hook).
func AddTag(tag string) { addTag(str(tag)) }

// NoStore says not to store the response, for reason (response hook).
func NoStore(reason string) { setNoStore(str(reason)) }

// Bypass fetches from the origin without storing the response (miss hook).
func Bypass() { setBypass() }

// SetOriginURL fetches this absolute URL instead of the route's origin
// (miss hook).
func SetOriginURL(u string) { setOriginURL(str(u)) }

// SetOriginHeader sets a header on the origin request (miss hook).
func SetOriginHeader(name, value string) {
	np, nn := str(name)
	vp, vn := str(value)
	setOriginHeader(np, nn, vp, vn)
}

// Respond answers the client with status and body without asking the
// origin (miss hook).
func Respond(status int, body []byte) {
	respond(int32(status), unsafe.Pointer(unsafe.SliceData(body)), int32(len(body)))
}

// Log writes a line to the gateway's log (rate-limited by the host).
func Log(level Level, msg string) {
	p, n := str(msg)
	logMsg(int32(level), p, n)
}
