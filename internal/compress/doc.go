// Package compress encodes a cached body once into the content codings a
// hit can send (br, zstd, gzip), and decodes one back when the identity
// body is needed.
//
// # Flow
//
// On a fill, the read path asks Types.Compressible whether the origin's
// (uncompressed) Content-Type is worth compressing; if so, the entry is
// stored as it came, its codings pending (gateway/encode.go). On a hit,
// the gateway picks the coding with policies.PreferredOf (the one
// Accept-Encoding parser) among those the route allows; the first hit
// that picks a coding has Encode make it, once per decoded entry, and
// later hits assign pre-built header values and write its bytes. No
// compression work happens per hit after the first.
//
// # Pools
//
// Encoders are expensive to create (a brotli or gzip writer holds tens to
// hundreds of KiB of tables), so each is pooled: Encode takes one, resets
// it onto the output buffer, and puts it back when the body is encoded.
// Small bodies take writers with less state (GzipStatelessMax, the brotli
// small window, zstd's lower-memory tables).
// The zstd encoder is one shared value: its EncodeAll is safe for
// concurrent use. Nothing pooled escapes Encode.
//
// # Identity
//
// Entries filled before codings were made on demand do not store the
// identity body of large bodies: the entry keeps the codings, and the
// identity body is decoded from the zstd one once and memoized
// (StoreIdentityBelow; the measurements are in RATIONALE.md).
package compress
