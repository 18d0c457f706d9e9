package config

import (
	"strings"
	"testing"
)

func TestByteSizeParse(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"268435456", 256 << 20, false},
		{"256MiB", 256 << 20, false},
		{"1GiB", 1 << 30, false},
		{"64KiB", 64 << 10, false},
		{"512B", 512, false},
		{" 2 TiB ", 2 << 40, false},
		{"-1MiB", -1 << 20, false}, // parses; Validate rejects it
		{"256MB", 0, true},         // GOMEMLIMIT has no SI units
		{"lots", 0, true},
		{"", 0, true},
		{"9000000TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err || b != tt.want {
				t.Fatalf("UnmarshalText(%q) = %d, %v; want %d, error %v", tt.in, b, err, tt.want, tt.err)
			}
		})
	}
}

// TestMemoryLimitLoad: server.memory_limit in a file and in the
// environment, and the errors naming the field.
func TestMemoryLimitLoad(t *testing.T) {
	tests := []struct {
		name, yaml, env string
		want            ByteSize
		err             string
	}{
		{"unit", "memory_limit: 256MiB", "", 256 << 20, ""},
		{"bytes", "memory_limit: 134217728", "", 128 << 20, ""},
		{"env", "", "512MiB", 512 << 20, ""},
		{"unset", "", "", 0, ""},
		{"negative", "memory_limit: -64MiB", "", 0, "server.memory_limit: must not be negative"},
		{"too small", "memory_limit: 8MiB", "", 0, "server.memory_limit: 8MiB is below the 32MiB"},
		{"unparseable", "memory_limit: 256MB", "", 0, "server.memory_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "server:\n  listen: 127.0.0.1:0\n"
			if tt.yaml != "" {
				doc += "  " + tt.yaml + "\n"
			}
			doc += "routes:\n  - origin: http://127.0.0.1:1\n"
			src := Source{Default: []byte(doc)}
			if tt.env != "" {
				src.Environ = []string{"EDGECACHE_SERVER_MEMORY_LIMIT=" + tt.env}
			}
			c, err := src.Load()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Load: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Server.MemoryLimit != tt.want {
				t.Fatalf("memory_limit = %v, want %v", c.Server.MemoryLimit, tt.want)
			}
		})
	}
}

// TestMemoryLimitCapsCaches: the cache bounds add up to at most
// CacheMemoryShare percent of server.memory_limit, each scaled by the
// same factor; without a limit, or with room, they are left alone.
func TestMemoryLimitCapsCaches(t *testing.T) {
	shards := []Shard{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: "127.0.0.1:2"}}
	tests := []struct {
		name   string
		cfg    Config
		capped bool
	}{
		{"no limit, shards", Config{Shards: shards}, false},
		{"no limit, embedded", Config{}, false},
		{"256MiB, shards", Config{Server: Server{MemoryLimit: 256 << 20}, Shards: shards}, true},
		{"256MiB, embedded", Config{Server: Server{MemoryLimit: 256 << 20}}, true},
		{"64MiB, L1 off", Config{Server: Server{MemoryLimit: 64 << 20}, Shards: shards, Valkey: Valkey{DisableL1: true}}, true},
		{"room to spare", Config{Server: Server{MemoryLimit: 64 << 30}, Shards: shards}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.Routes = []Route{{Origin: "http://127.0.0.1:1"}}
			c.EnsureDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			var ref Config
			ref.Shards, ref.Valkey.DisableL1 = c.Shards, c.Valkey.DisableL1
			ref.Routes = c.Routes
			ref.EnsureDefaults() // the same config without the limit
			sum := int64(c.Valkey.L1BytesPerConn)*c.l1Conns() + c.ViewMemoBytes() + c.Limits.FillBufferBytes
			if len(c.Shards) > 0 {
				sum += c.Valkey.FallbackBytes
			} else {
				sum += c.Embedded.MaxBytes
			}
			t.Logf("limit %v: l1/conn %d MiB, memo %d MiB, fallback %d MiB, embedded %d MiB, fill %d MiB: %d MiB",
				c.Server.MemoryLimit, c.Valkey.L1BytesPerConn>>20, c.ViewMemoBytes()>>20, c.Valkey.FallbackBytes>>20, c.Embedded.MaxBytes>>20, c.Limits.FillBufferBytes>>20, sum>>20)
			if !tt.capped {
				if c.Valkey.L1BytesPerConn != ref.Valkey.L1BytesPerConn || c.ViewMemoBytes() != DefaultViewMemoBytes ||
					c.Limits.FillBufferBytes != ref.Limits.FillBufferBytes || c.Embedded.MaxBytes != ref.Embedded.MaxBytes {
					t.Fatal("bounds changed without a limit that needs it")
				}
				return
			}
			if budget := int64(c.Server.MemoryLimit) / 100 * CacheMemoryShare; sum > budget {
				t.Errorf("caches add up to %d, over the budget %d", sum, budget)
			}
			if c.ViewMemoBytes() >= DefaultViewMemoBytes || c.Limits.FillBufferBytes >= ref.Limits.FillBufferBytes {
				t.Errorf("view memo %d and fill buffer %d not capped", c.ViewMemoBytes(), c.Limits.FillBufferBytes)
			}
			// one factor: the fill buffer and the view memo keep their ratio
			want := float64(ref.Limits.FillBufferBytes) / DefaultViewMemoBytes
			if got := float64(c.Limits.FillBufferBytes) / float64(c.ViewMemoBytes()); got < want*0.99 || got > want*1.01 {
				t.Errorf("fill/memo ratio %.3f, want %.3f", got, want)
			}
		})
	}
}
