// Package entry is the envelope of one cached HTTP response: the bytes the
// gateway stores as one Valkey string per cached variant.
//
// Encode appends an Entry to a buffer; Decode reads the whole envelope back;
// Peek reads only the fixed-width header (status, times, stale windows) with
// no allocation, for decisions that need no body. Filter prepares the header
// set that is stored.
//
// # Format
//
// All integers are big-endian; "uvarint" is encoding/binary's.
//
//	offset size  field
//	0      2     magic "EC"
//	2      1     version (Version)
//	3      2     status, 100..999
//	5      8     stored-at, unix milliseconds (0: zero time)
//	13     8     fresh-until, unix milliseconds (0: zero time)
//	21     4     initial age, seconds
//	25     4     stale-while-revalidate, seconds
//	29     4     stale-if-error, seconds
//	33           uvarint length + bytes: ETag
//	             uvarint length + bytes: Last-Modified
//	             uvarint pair count, then per pair: name, value (length-prefixed)
//	             uvarint tag count, then per tag: length-prefixed bytes
//	             uvarint body length + body, which ends the value
//
// Header pairs are written sorted by name, the values of a name in their
// order, so equal entries encode to equal bytes.
//
// # Corrupt and foreign values
//
// A value is read only once it is fully validated: a wrong magic, a length
// or count beyond the bytes that remain, a status outside 100..999, a time
// outside 1970..9999, an empty or non-token header name, a CR, LF or NUL in
// a header value, or bytes after the body are all ErrCorrupt; another
// version is ErrVersion. Counts are bounded by the bytes that remain, so
// decoding never allocates more than a small multiple of the input. The
// gateway treats any error as a miss. FuzzDecode holds this.
//
// # Memory
//
// Decode copies the envelope's strings (validators, header names and
// values, tags) into one allocation and makes Body a view of the input:
// the input must not be mutated while the Entry is in use. That fits the
// hit path, where the bytes are an immutable L1 view decoded once and
// memoized.
package entry
