package shardmap

import (
	"crypto/tls"
	"log/slog"
	"strings"

	"github.com/edgecache/edgecache/config"
)

// SpecOf is the Spec of a configured shard (defaults filled in by
// config). Only file and variable names of credentials go in: the secrets
// are read when the shard connects, and again when they rotate.
func SpecOf(sc config.Shard) Spec {
	spec := Spec{Name: sc.Name, Addr: sc.Addr, Cluster: strings.Join(sc.Cluster, ","), ReadReplicas: sc.ReadReplicas}
	spec.TLS = tlsOf(sc.TLS)
	spec.Auth = Auth{Username: sc.Username, PasswordFile: sc.PasswordFile, PasswordEnv: sc.PasswordEnv, PasswordCommand: sc.PasswordCommand, CommandTTL: sc.PasswordCommandTTL}
	if sn := sc.Sentinel; sn != nil {
		spec.Sentinel, spec.Master = strings.Join(sn.Addrs, ","), sn.Master
		spec.SentinelTLS = tlsOf(sn.TLS)
		spec.SentinelAuth = Auth{Username: sn.Username, PasswordFile: sn.PasswordFile, PasswordEnv: sn.PasswordEnv}
	}
	return spec
}

// OptionsOf are the client options every shard of v shares.
func OptionsOf(v config.Valkey, log *slog.Logger) Options {
	return Options{
		L1BytesPerConn: v.L1BytesPerConn, DisableL1: v.DisableL1, L1TTL: v.L1TTL, L1MinUses: v.L1MinUses,
		DialTimeout: v.DialTimeout, CommandTimeout: v.CommandTimeout,
		BreakerFailures: v.BreakerFailures, BreakerCooldown: v.BreakerCooldown,
		MaxFlushDelay: v.MaxFlushDelay,
		AuthRefresh:   v.AuthRefreshInterval, ClusterRefresh: v.ClusterRefreshInterval, Log: log,
	}
}

func tlsOf(t *config.TLS) TLS {
	if !t.On() {
		return TLS{}
	}
	v := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		v = tls.VersionTLS13
	}
	return TLS{Enabled: true, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, MinVersion: v, Insecure: t.InsecureSkipVerify}
}
