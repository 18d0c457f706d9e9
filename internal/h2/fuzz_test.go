package h2

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzConn is a connection whose client sends in and reads nothing.
type fuzzConn struct {
	net.Conn // nil: the methods below are all the server uses
	mu       sync.Mutex
	in       io.Reader
	closed   bool
	wrote    int
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.wrote += len(p)
	return len(p), nil
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSeeds are frame sequences a client sends after its SETTINGS.
func fuzzSeeds() [][]byte {
	var out [][]byte
	frames := func(write func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) {
		var b, hb bytes.Buffer
		write(http2.NewFramer(&b, nil), hpack.NewEncoder(&hb), &hb)
		out = append(out, b.Bytes())
	}
	req := func(enc *hpack.Encoder, hb *bytes.Buffer, method, path string) []byte {
		hb.Reset()
		for _, kv := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "x"}, {":path", path}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		return hb.Bytes()
	}
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: req(enc, hb, "GET", "/hit"), EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: req(enc, hb, "GET", "/miss"), EndStream: true, EndHeaders: true})
		_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: req(enc, hb, "POST", "/echo"), EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("abc"))
		_ = fr.WriteWindowUpdate(0, 1000)
		_ = fr.WriteData(1, true, []byte("def"))
		_ = fr.WritePing(false, [8]byte{1})
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		blk := req(enc, hb, "GET", "/big")
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true})
		_ = fr.WriteContinuation(1, true, blk[3:])
		_ = fr.WriteWindowUpdate(1, 100)
		_ = fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	})
	return out
}

// FuzzServeConn feeds arbitrary frames (after a valid preface and
// SETTINGS) to a connection: no panic, and ServeConn returns when the
// input ends.
func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	srv := &Server{Handler: http.HandlerFunc(gatewayish), MaxConcurrentStreams: 20}
	var pre bytes.Buffer
	pre.WriteString(http2.ClientPreface)
	_ = http2.NewFramer(&pre, nil).WriteSettings()
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &fuzzConn{in: io.MultiReader(bytes.NewReader(pre.Bytes()), bytes.NewReader(in))}
		done := make(chan struct{})
		go func() { srv.ServeConn(c); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn still running 10s after its input ended")
		}
	})
}
