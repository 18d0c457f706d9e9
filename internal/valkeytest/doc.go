// Package valkeytest starts real Valkey (or Redis) servers for tests: plain
// servers, a Cluster, or a primary and replica watched by Sentinels.
//
// Every server is a child process listening on a free 127.0.0.1 port, with
// no persistence, its own directory under t.TempDir() and its output in a
// log file there. t.Cleanup kills it and waits for it; when the test has
// failed, the tail of each log is printed. On Linux a server also dies with
// the test binary, even one killed by a timeout.
//
// Tests drive failures through the Server: Kill, Stop, Freeze and Thaw,
// Restart on the same port. Do reads state directly over a fresh
// connection, with no client library in between.
//
// # Missing server
//
// The servers come from valkey-server or, failing that, redis-server. When
// neither is installed a test that asks for one is skipped, except under
// CI=true, where it fails: CI must never pass by skipping. `make test`
// installs redis-server.
package valkeytest
