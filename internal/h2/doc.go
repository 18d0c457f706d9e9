// Package h2 is an HTTP/2 server that runs a request's handler inline on
// the goroutine that reads the connection's frames, the way nginx serves
// a stream inside its event loop: a cache hit costs no goroutine, no
// hand-off between goroutines and no thread wake-up, and the frames of
// every response answered while a batch of input was read leave in one
// write.
//
// A handler that is about to block — it asks for its context's Done (an
// origin fetch, a coalesced wait), its Write would exceed the client's
// flow-control window, it reads a request body, it flushes a streaming
// response — first hands the read loop to a new goroutine (leader and
// follower), then blocks; its own goroutine finishes the stream and ends.
// Requests with a body run on their own goroutine from the start. The
// connection's state (streams, windows, the HPACK encoder and the write
// buffer) is guarded by one mutex, so frames are encoded and appended in
// one critical section and the HPACK state stays in the order the client
// decodes it.
//
// Limits follow net/http's: MaxConcurrentStreams (REFUSED_STREAM above
// it, counting the handlers of reset streams still running), the header
// list size (the Framer's MaxHeaderListSize, which also bounds
// CONTINUATION floods and HPACK strings), rapid reset (CVE-2023-44487: a
// connection whose client resets more streams than it lets finish gets
// GOAWAY ENHANCE_YOUR_CALM), a deadline for the preface, an idle timeout
// and a write timeout.
package h2
