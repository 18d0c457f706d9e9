// Package deploy holds no code: it is the deployment files — valkey.conf,
// the systemd unit, the container build, the Kubernetes manifests, the
// OpenTelemetry collector config and the Grafana dashboard — and the tests
// that check them as far as this machine can without a container engine or
// a cluster:
//
//   - every YAML file parses (multi-document for Kubernetes), the manifests
//     have the kinds, probes, mounts and names that must agree with each
//     other, and the gateway config inside the ConfigMap passes
//     `edgecache config check`;
//   - valkey.conf (and its copy in the ConfigMap, with the StatefulSet's
//     command line) starts a real valkey-server or redis-server;
//   - the Dockerfile's build commands run here and produce a static binary,
//     and its final stage runs as non-root;
//   - the systemd unit has the hardening directives, and passes
//     `systemd-analyze verify` when that is installed;
//   - the dashboard's PromQL names only metrics and labels the gateway
//     exports.
package deploy
