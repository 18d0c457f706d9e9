package config

// The HTTP/2 servers server.http2.server chooses between.
const (
	// HTTP2ServerInline is internal/h2: handlers run on the connection's
	// read loop until they would block (the default).
	HTTP2ServerInline = "inline"
	// HTTP2ServerStd is net/http's HTTP/2 server: a goroutine per stream.
	HTTP2ServerStd = "std"
	// DefaultHTTP2Server is the server TLS h2 connections get.
	DefaultHTTP2Server = HTTP2ServerInline
)
