// Package compress encodes a cached body once, at fill time, into the
// content codings a hit can send (br, zstd, gzip), and picks the coding
// for a request from its Accept-Encoding.
//
// # Flow
//
// On a fill, the read path asks Types.Compressible whether the origin's
// (uncompressed) Content-Type is worth compressing; if so, Encode makes
// each coding once and the entry stores them with the identity body. On a
// hit, Choose reads Accept-Encoding against the codings the entry has and
// returns the one to send; the hit assigns pre-built header values and
// writes the stored bytes. No compression work happens per hit: Choose is
// a scan of the field and does not allocate.
//
// # Pools
//
// Encoders are expensive to create (a brotli or gzip writer holds tens to
// hundreds of KiB of tables), so each is pooled: Encode takes one, resets
// it onto the output buffer, and puts it back when the body is encoded.
// The zstd encoder is one shared value: its EncodeAll is safe for
// concurrent use. Nothing pooled escapes Encode.
//
// # Identity
//
// The identity body is not stored for large bodies: the entry keeps the
// codings, and the identity body is decoded from the zstd one once and
// memoized (StoreIdentityBelow; the measurements are in RATIONALE.md).
//
// Choose carries its own minimal Accept-Encoding reader (codings and
// q-values, RFC 9110 §12.5.3); when policies gains the shared parser the
// two are to be unified.
package compress
