package compress

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Coding is a content coding (RFC 9110 §8.4.1).
type Coding uint8

// The codings edgecache stores. Their order is the server's preference,
// best last: when a client weighs several equally, the higher one wins.
const (
	Identity Coding = iota
	Gzip
	Zstd
	Brotli
)

// String returns the coding's name as Content-Encoding writes it.
func (c Coding) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Brotli:
		return "br"
	}
	return "identity"
}

// The levels Encode uses. A body is encoded once per coding and gateway
// and sent many times, so the levels lean towards size, short of the slow
// top levels (brotli 11 costs ~50x level 5 for a few percent).
const (
	// BrotliLevel is brotli's quality (0-11).
	BrotliLevel = 6
	// GzipLevel is gzip's level (1-9).
	GzipLevel = 6
	// ZstdLevel is zstd's speed class.
	ZstdLevel = zstd.SpeedDefault
)

var (
	gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, GzipLevel); return w }}
	// gzipSmallPool's writers keep no state between blocks, for bodies
	// up to GzipStatelessMax (gzipWriter).
	gzipSmallPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.StatelessCompression); return w }}
	brotliPool    = sync.Pool{New: func() any { return brotli.NewWriterLevel(nil, BrotliLevel) }}
	// brotliSmallPool's writers have a window of BrotliSmallWindowBits,
	// for bodies that fit in it (brotliWriter).
	brotliSmallPool = sync.Pool{New: func() any {
		return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: BrotliLevel, LGWin: BrotliSmallWindowBits})
	}}
	zstdEnc = sync.OnceValue(func() *zstd.Encoder {
		// With no writer, only EncodeAll is used; concurrency 1 keeps
		// the encoder's memory small (EncodeAll is still safe for
		// concurrent use), and the lower-memory tables keep ~0.3 of its
		// ~1.6 MiB for the same output (TestSmallEncoderState).
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(ZstdLevel), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("compress: zstd encoder: " + err.Error()) // only bad options fail
		}
		return e
	})
	zstdDec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
		if err != nil {
			panic("compress: zstd decoder: " + err.Error())
		}
		return d
	})
)

// BrotliSmallWindowBits is the window (log2 bytes) of the brotli writers
// used for bodies no larger than the window. A window as large as the body
// finds every match a larger one would, and a writer's tables scale with
// its window: at quality 6 one with the default 4 MiB window holds ~2 MiB,
// one with a 64 KiB window ~0.55 MiB (measured with runtime.MemStats
// around a writer that encoded 1 KiB). Most cached bodies are small, so
// the pool of writers that stays between fills is the small one.
const BrotliSmallWindowBits = 16

// brotliWriter takes a pooled brotli writer whose window suits a body of
// size bytes, and the pool to put it back in.
func brotliWriter(size int) (*brotli.Writer, *sync.Pool) {
	if size <= 1<<BrotliSmallWindowBits {
		return brotliSmallPool.Get().(*brotli.Writer), &brotliSmallPool
	}
	return brotliPool.Get().(*brotli.Writer), &brotliPool
}

// GzipStatelessMax is the largest body encoded by a stateless gzip
// writer (klauspost's gzip.StatelessCompression) instead of a level
// GzipLevel one. A level-6 writer holds ~1 MiB of match tables between
// uses, a stateless one a few KiB; on bodies this small the stateless
// output is within ~5% of level 6's (JSON +4.7%, HTML +3.6% at 1 KiB), and
// the gap grows past it (JSON +6% at 2 KiB, +7% at 4 KiB, +11% at 16 KiB),
// measured by TestSmallEncoderState. Many API bodies are this small, and
// gzip is the coding a client gets only when it takes neither br nor zstd.
const GzipStatelessMax = 1 << 10

// gzipWriter takes a pooled gzip writer that suits a body of size bytes,
// and the pool to put it back in.
func gzipWriter(size int) (*gzip.Writer, *sync.Pool) {
	if size <= GzipStatelessMax {
		return gzipSmallPool.Get().(*gzip.Writer), &gzipSmallPool
	}
	return gzipPool.Get().(*gzip.Writer), &gzipPool
}

// StoreIdentityBelow is the body size under which an entry stores the
// identity body alongside its codings. At and above it the identity body is
// not stored: it is decoded from the zstd coding (the fastest to decode)
// when a client accepts no coding or asks for a Range, and memoized. Below
// it, the identity body costs less memory than a memo entry's overhead and
// a decode's latency is not worth saving.
const StoreIdentityBelow = 4 << 10

// Encode appends body encoded with c to dst. Identity appends body as it
// is.
func Encode(dst []byte, c Coding, body []byte) ([]byte, error) {
	switch c {
	case Identity:
		return append(dst, body...), nil
	case Zstd:
		return zstdEnc().EncodeAll(body, dst), nil
	case Gzip:
		buf := bytes.NewBuffer(dst)
		w, pool := gzipWriter(len(body))
		defer pool.Put(w)
		w.Reset(buf)
		if _, err := w.Write(body); err != nil {
			return dst, fmt.Errorf("compress: gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return dst, fmt.Errorf("compress: gzip: %w", err)
		}
		return buf.Bytes(), nil
	case Brotli:
		buf := bytes.NewBuffer(dst)
		w, pool := brotliWriter(len(body))
		defer pool.Put(w)
		w.Reset(buf)
		if _, err := w.Write(body); err != nil {
			return dst, fmt.Errorf("compress: br: %w", err)
		}
		if err := w.Close(); err != nil {
			return dst, fmt.Errorf("compress: br: %w", err)
		}
		return buf.Bytes(), nil
	}
	return dst, fmt.Errorf("compress: unknown coding %d", c)
}

// Decode appends body decoded from c to dst, reading at most limit bytes
// of output (a body that decodes larger is an error: it is not the body
// that was encoded).
func Decode(dst []byte, c Coding, body []byte, limit int64) ([]byte, error) {
	var r io.Reader
	switch c {
	case Identity:
		return append(dst, body...), nil
	case Zstd:
		out, err := zstdDec().DecodeAll(body, dst)
		if err != nil {
			return dst, fmt.Errorf("compress: zstd: %w", err)
		}
		if int64(len(out)-len(dst)) > limit {
			return dst, fmt.Errorf("compress: zstd: body over %d bytes", limit)
		}
		return out, nil
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return dst, fmt.Errorf("compress: gzip: %w", err)
		}
		r = zr
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(body))
	default:
		return dst, fmt.Errorf("compress: unknown coding %d", c)
	}
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return dst, fmt.Errorf("compress: %s: %w", c, err)
	}
	if n > limit {
		return dst, fmt.Errorf("compress: %s: body over %d bytes", c, limit)
	}
	return buf.Bytes(), nil
}

// DefaultTypes are the media types compressed when the configuration
// names none: text, and the structured or script formats that compress
// well. Images (but SVG), audio, video, archives and fonts other than
// the uncompressed ones are already compressed.
var DefaultTypes = []string{
	"text/*",
	"application/json", "*+json",
	"application/xml", "*+xml",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"application/wasm",
	"application/graphql-response+json",
	"image/svg+xml", "image/x-icon", "image/bmp",
	"font/ttf", "font/otf", "application/vnd.ms-fontobject",
}

// Types is a set of compressible media types.
type Types struct {
	exact    []string // "application/json"
	prefixes []string // "text/" from "text/*"
	suffixes []string // "+json" from "*+json"
}

// NewTypes builds a set from patterns: a media type ("application/json"),
// a top-level wildcard ("text/*") or a structured-syntax suffix
// ("*+json"). Matching ignores case and parameters. nil or empty means
// DefaultTypes.
func NewTypes(patterns []string) *Types {
	if len(patterns) == 0 {
		patterns = DefaultTypes
	}
	t := &Types{}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case strings.HasSuffix(p, "/*"):
			t.prefixes = append(t.prefixes, p[:len(p)-1])
		case strings.HasPrefix(p, "*+"):
			t.suffixes = append(t.suffixes, p[1:])
		case p != "":
			t.exact = append(t.exact, p)
		}
	}
	return t
}

// ValidType reports whether p is a pattern NewTypes understands, for
// configuration validation.
func ValidType(p string) bool {
	p = strings.TrimSpace(p)
	if strings.HasPrefix(p, "*+") {
		return len(p) > 2 && !strings.ContainsAny(p[2:], "/*; ")
	}
	typ, sub, ok := strings.Cut(p, "/")
	return ok && typ != "" && sub != "" && !strings.ContainsAny(typ, "*; ") && !strings.ContainsAny(sub, "/; ") && (sub == "*" || !strings.Contains(sub, "*"))
}

// Compressible reports whether a body of this Content-Type value is worth
// compressing. It does not allocate.
func (t *Types) Compressible(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	for _, e := range t.exact {
		if strings.EqualFold(mt, e) {
			return true
		}
	}
	for _, p := range t.prefixes {
		if len(mt) > len(p) && strings.EqualFold(mt[:len(p)], p) {
			return true
		}
	}
	for _, s := range t.suffixes {
		if len(mt) > len(s) && strings.EqualFold(mt[len(mt)-len(s):], s) && strings.Contains(mt, "/") {
			return true
		}
	}
	return false
}
