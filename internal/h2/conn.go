package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Protocol constants (RFC 9113).
const (
	initialWindow    = 65535
	maxWindow        = 1<<31 - 1
	defaultFrameSize = 16384
	headerTableSize  = 4096
	// initialHeaderTableSize is the encoder's dynamic table size until the
	// client's SETTINGS say less (RFC 9113 6.5.2; x/net's hpack default).
	initialHeaderTableSize = 4096
	// windowRefill is the unacknowledged receive credit after which a
	// WINDOW_UPDATE goes out: half the window, as most servers do.
	windowRefill = initialWindow / 2
	readBufSize  = 16 << 10
	// flushAt is the buffered output past which a response's DATA is
	// written at once rather than with the batch: a large body does not
	// sit whole in the connection's buffer.
	flushAt = 64 << 10
	// keepBuf is the most write buffer a connection keeps between
	// batches; a larger one (a big head) is dropped after its write.
	keepBuf = 256 << 10
)

var errClosed = errors.New("h2: connection closed")

// conn is one HTTP/2 connection. fr (reading) belongs to the goroutine
// that holds the read-loop role; everything below mu is shared with the
// handlers that left the loop.
type conn struct {
	srv   *Server
	rwc   net.Conn
	br    *bufio.Reader
	fr    *http2.Framer
	base  context.Context
	tls   *tls.ConnectionState
	raddr string
	idle  bool // the read deadline is the idle one

	mu   sync.Mutex
	cond sync.Cond // window updates, body data, resets, close
	wbuf bytes.Buffer
	wfr  *http2.Framer // writes frames into wbuf
	hbuf bytes.Buffer
	henc *hpack.Encoder
	// hencSize is the encoder's dynamic table size; hencUpdate: the client
	// lowered it (SETTINGS_HEADER_TABLE_SIZE) and the next head must start
	// with the size update, which henc writes (writeHeadersLocked).
	hencSize   uint32
	hencUpdate bool
	spare      []byte // a finished response's body buffer (keepSpareLocked)
	streams    map[uint32]*stream
	sendWindow int64
	peerWindow int32  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32 // the client's SETTINGS_MAX_FRAME_SIZE
	maxID      uint32 // highest client stream id seen
	running    int    // handlers running, reset streams included
	resets     int    // client resets of streams whose handler ran
	served     int    // streams that finished
	unacked    int    // connection receive credit not yet returned
	sentGoAway bool
	closed     bool
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{
		srv: s, rwc: rwc, raddr: rwc.RemoteAddr().String(), tls: tlsState(rwc),
		streams: make(map[uint32]*stream), sendWindow: initialWindow,
		peerWindow: initialWindow, peerFrame: defaultFrameSize, hencSize: initialHeaderTableSize,
	}
	c.cond.L = &c.mu
	c.br = bufio.NewReaderSize(rwc, readBufSize)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetMaxReadFrameSize(defaultFrameSize)
	c.fr.MaxHeaderListSize = uint32(orDefault(s.MaxHeaderListBytes, DefaultMaxHeaderListBytes))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(headerTableSize, nil)
	c.wfr = http2.NewFramer(&c.wbuf, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.base = context.Background()
	if s.ConnContext != nil {
		c.base = s.ConnContext(c.base, rwc)
	}
	return c
}

// handshake reads the client preface and sends the server's SETTINGS,
// within PrefaceTimeout.
func (c *conn) handshake() bool {
	_ = c.rwc.SetDeadline(time.Now().Add(orDefault(c.srv.PrefaceTimeout, DefaultPrefaceTimeout)))
	c.mu.Lock()
	_ = c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.srv.maxStreams())},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.fr.MaxHeaderListSize},
	)
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return false
	}
	var p [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, p[:]); err != nil || string(p[:]) != http2.ClientPreface {
		return false
	}
	// The first frame must be SETTINGS; it is read under the same deadline.
	f, err := c.fr.ReadFrame()
	if err != nil {
		return false
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		c.goAway(http2.ErrCodeProtocol)
		return false
	}
	_ = c.rwc.SetWriteDeadline(time.Time{})
	c.idle = true // the preface's read deadline is on until beforeBlock changes it
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.onSettings(sf) == nil
}

// readLoop is the leader's loop: it reads frames and serves them until
// the connection ends or a handler running inline hands the role on.
func (c *conn) readLoop() {
	for {
		if c.br.Buffered() == 0 {
			if !c.beforeBlock() {
				c.shut()
				return
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readError(err) {
				c.shut()
				return
			}
			continue
		}
		switch c.frame(f) {
		case loopStop:
			c.shut()
			return
		case loopHandedOn:
			return
		}
	}
}

// beforeBlock flushes the batch's frames and arms the idle deadline when
// no stream is open; false if the connection is done.
func (c *conn) beforeBlock() bool {
	c.mu.Lock()
	if c.unacked > 0 {
		_ = c.wfr.WriteWindowUpdate(0, uint32(c.unacked))
		c.unacked = 0
	}
	err := c.flushLocked()
	idle := len(c.streams) == 0
	done := c.closed || (c.sentGoAway && idle)
	c.mu.Unlock()
	if err != nil || done {
		return false
	}
	if idle {
		_ = c.rwc.SetReadDeadline(time.Now().Add(orDefault(c.srv.IdleTimeout, DefaultIdleTimeout)))
		c.idle = true
	} else if c.idle {
		_ = c.rwc.SetReadDeadline(time.Time{})
		c.idle = false
	}
	return true
}

// readError answers a frame the Framer refused: a stream error resets
// the stream, anything else ends the connection. True to keep reading.
func (c *conn) readError(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if se.StreamID > c.maxID && se.StreamID%2 == 1 {
			c.maxID = se.StreamID
		}
		c.resetLocked(se.StreamID, se.Code)
		return true
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.goAway(http2.ErrCode(ce))
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.goAway(http2.ErrCodeNo)
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		c.goAway(http2.ErrCodeFrameSize)
	}
	return false
}

type loopAction int

const (
	loopGo       loopAction = iota // read the next frame
	loopStop                       // end the connection
	loopHandedOn                   // this goroutine is no longer the leader
)

func (c *conn) frame(f http2.Frame) loopAction {
	if mh, ok := f.(*http2.MetaHeadersFrame); ok {
		return c.onHeaders(mh)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch f := f.(type) {
	case *http2.DataFrame:
		err = c.onData(f)
	case *http2.SettingsFrame:
		if !f.IsAck() {
			err = c.onSettings(f)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			err = c.wfr.WritePing(true, f.Data)
		}
	case *http2.WindowUpdateFrame:
		err = c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		err = c.onReset(f)
	case *http2.GoAwayFrame:
		// The client will open no more streams; the ones open finish.
		c.sentGoAway = true
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.resetLocked(f.StreamID, http2.ErrCodeProtocol) // depends on itself
		}
	case *http2.PushPromiseFrame:
		err = http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Other PRIORITY frames and unknown frames are ignored (RFC 9113 5.5, 5.3.2).
	if err != nil {
		c.goAwayLocked(connCode(err))
		return loopStop
	}
	return loopGo
}

func connCode(err error) http2.ErrCode {
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return http2.ErrCode(ce)
	}
	return http2.ErrCodeInternal
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(c.peerWindow)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.peerWindow = int32(s.Val)
		case http2.SettingMaxFrameSize:
			c.peerFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			if s.Val < c.hencSize { // as henc: only a lower size is an update
				c.hencSize, c.hencUpdate = s.Val, true
			}
		}
		return nil
	}); err != nil {
		return err
	}
	c.cond.Broadcast()
	return c.wfr.WriteSettingsAck()
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if inc == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.cond.Broadcast()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		return nil
	}
	if inc == 0 {
		c.resetLocked(f.StreamID, http2.ErrCodeProtocol)
		return nil
	}
	st.sendWindow += inc
	if st.sendWindow > maxWindow {
		c.resetLocked(f.StreamID, http2.ErrCodeFlowControl)
		return nil
	}
	c.cond.Broadcast()
	return nil
}

// onReset ends a stream the client canceled and holds the connection to
// the rapid-reset budget: past MaxConcurrentStreams resets of streams
// whose handler ran, more resets than finished streams is an attack.
func (c *conn) onReset(f *http2.RSTStreamFrame) error {
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	c.resets++
	c.endStreamLocked(st, errReset)
	if c.resets > c.srv.maxStreams() && c.resets > c.served {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	n := int(f.Length)
	c.unacked += n // the connection's credit comes back at once: per-stream windows bound the buffering
	st := c.streams[f.StreamID]
	if st == nil || st.body == nil || st.body.eof {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.resetLocked(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > st.recvWindow {
		c.resetLocked(f.StreamID, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWindow -= n
	b := st.body
	b.got += int64(len(f.Data()))
	if b.want >= 0 && (b.got > b.want || (f.StreamEnded() && b.got != b.want)) {
		c.resetLocked(f.StreamID, http2.ErrCodeProtocol) // malformed (RFC 9113 8.1.1)
		return nil
	}
	b.add(f.Data(), n-len(f.Data()))
	if f.StreamEnded() {
		b.eof = true
	}
	c.cond.Broadcast()
	return nil
}

// resetLocked sends RST_STREAM and forgets the stream.
func (c *conn) resetLocked(id uint32, code http2.ErrCode) {
	_ = c.wfr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		c.endStreamLocked(st, errReset)
	}
}

// endStreamLocked removes st from the open streams and cancels its
// context; its handler, if running, finds out at its next write.
func (c *conn) endStreamLocked(st *stream, err error) {
	if st.gone {
		return
	}
	st.gone = true
	delete(c.streams, st.id)
	st.ctx.cancelLocked(err)
	if st.body != nil && st.body.err == nil {
		st.body.err = err
	}
	c.cond.Broadcast()
}

// goAway sends GOAWAY with the last stream id seen; the connection closes
// when its streams are done.
func (c *conn) goAway(code http2.ErrCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goAwayLocked(code)
	if len(c.streams) == 0 || code != http2.ErrCodeNo {
		c.closeLocked()
	}
}

func (c *conn) goAwayLocked(code http2.ErrCode) {
	if c.sentGoAway && code == http2.ErrCodeNo {
		return
	}
	c.sentGoAway = true
	_ = c.wfr.WriteGoAway(c.maxID, code, nil)
	_ = c.flushLocked()
}

// flushLocked writes the buffered frames in one write.
func (c *conn) flushLocked() error {
	if c.closed {
		c.wbuf.Reset()
		return errClosed
	}
	if c.wbuf.Len() == 0 {
		return nil
	}
	_ = c.rwc.SetWriteDeadline(time.Now().Add(orDefault(c.srv.WriteTimeout, DefaultWriteTimeout)))
	_, err := c.rwc.Write(c.wbuf.Bytes())
	c.wbuf.Reset()
	if c.wbuf.Cap() > keepBuf {
		c.wbuf = bytes.Buffer{}
	}
	if err != nil {
		c.closeLocked()
	}
	return err
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

// closeLocked closes the socket (the leader's read fails and it shuts
// the connection down) and ends every stream.
func (c *conn) closeLocked() {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.rwc.Close()
	for _, st := range c.streams {
		c.endStreamLocked(st, errClosed)
	}
	c.cond.Broadcast()
}

// shut ends the connection from the leader's side.
func (c *conn) shut() {
	c.mu.Lock()
	_ = c.flushLocked()
	c.closeLocked()
	c.mu.Unlock()
	c.srv.track(c, false)
}
