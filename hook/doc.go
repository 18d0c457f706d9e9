// Package hook holds the types a policy hook is called with and answers
// with — Request, Response, Decision, MissAction, KeyAction — and the
// interfaces of a loaded plugin (Plugin) and of what loads one (Loader).
//
// It is a leaf, as wazero's api package is: the WASM host (wasm), the
// policies and their plugin adapter (policies), the gateway and the CLI
// all import it and share one set of types, so no value is converted by
// hand between them and a rule cannot differ between two copies.
// policies names the same types (policies.Request = hook.Request).
//
// # Ownership
//
// The caller owns every value it passes: a hook (or a plugin host) must not
// keep a Request, Response, Decision or MissAction, or anything reachable
// from them, after the call returns. The gateway reuses them across
// requests.
package hook
