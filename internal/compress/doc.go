// Package compress encodes a cached body once, at fill time, into the
// content codings a hit can send (br, zstd, gzip), and decodes one back
// when the identity body is needed.
//
// # Flow
//
// On a fill, the read path asks Types.Compressible whether the origin's
// (uncompressed) Content-Type is worth compressing; if so, Encode makes
// each coding once and the entry stores them (gateway/encode.go). On a
// hit, the gateway picks the coding with policies.PreferredOf (the one
// Accept-Encoding parser) among those the entry has, assigns pre-built
// header values and writes the stored bytes. No compression work happens
// per hit.
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
package compress
