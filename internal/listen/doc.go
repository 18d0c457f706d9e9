// Package listen is the traffic listener's transport: TLS with
// certificates chosen by SNI (from files, or from ACME through certmagic),
// HTTP/2 with abuse limits, h2c, HTTP/3 over QUIC, the PROXY protocol and
// a plain listener that redirects to HTTPS.
//
// # Flow
//
// Server.Serve takes the TCP listener. Without TLS or h2c it hands the
// listener (behind the PROXY protocol reader when configured) to the
// gateway's own HTTP/1.1 fast path. With TLS the same fast path
// (internal/h1) accepts the connections and does the handshake on each
// one's goroutine: one that chose HTTP/1.1 by ALPN, or nothing, stays on
// it; h2, ACME's acme-tls/1 and a failed handshake go to net/http with the
// connection, which serves or reports them as if it had accepted it
// (server.disable_fast_path gives it every connection); with server.http3 a QUIC
// listener on the same port serves HTTP/3 and TCP responses advertise it
// in Alt-Svc.
//
// # Certificates
//
// Every handshake asks GetCertificate, which reads the current certificate
// set through one atomic pointer: the exact SNI name, then its wildcard
// (*.example.com), then ACME, then the first file certificate. A reload
// (of the configuration, or of a certificate or key file that changed on
// disk) loads and checks every pair off the handshake path and swaps the
// set in whole; a pair that does not load, does not match its key or has
// expired rejects the new set and the old one keeps serving. Connections
// are never closed by a swap: a handshake already past GetCertificate
// finishes with the certificate it picked.
//
// # Session tickets
//
// Ticket keys are random, made at start and every
// server.tls.session_ticket_rotation; the newest encrypts, the last three
// decrypt, so a resumed session outlives a rotation and a stolen key
// stops decrypting after three.
package listen
