package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// Source says where a configuration comes from. Layers apply in order:
// the file (or Default when File is empty), then EDGECACHE_ environment
// variables, then --set overrides.
type Source struct {
	// File is a YAML file; empty means none.
	File string
	// Default is the YAML used when File is empty (nil: start empty).
	Default []byte
	// Environ is the environment, as os.Environ returns it.
	Environ []string
	// Sets are command-line "path=value" overrides.
	Sets []string
}

// String names the source for logs and the admin status.
func (s Source) String() string {
	switch {
	case s.File != "":
		return s.File
	case s.Default != nil:
		return "embedded default"
	}
	return "environment"
}

// Load reads, overrides, fills defaults and validates. Any error rejects
// the configuration whole.
func (s Source) Load() (*Config, error) {
	k := koanf.New(".")
	switch {
	case s.File != "":
		if err := k.Load(file.Provider(s.File), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: %s: %w", s.File, err)
		}
	case s.Default != nil:
		if err := k.Load(rawbytes.Provider(s.Default), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: embedded default: %w", err)
		}
	}
	tree := k.Raw()
	applyPort(tree, s)
	if err := applyEnv(tree, s.Environ); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := applySets(tree, s.Sets); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	k = koanf.New(".")
	if err := k.Load(confmap.Provider(tree, ""), nil); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := decode(k, s.File)
	if err != nil {
		if s.File != "" {
			return nil, fmt.Errorf("config: %s: %w", s.File, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Load reads the YAML file at path alone (no environment), fills defaults
// and validates the result.
func Load(path string) (*Config, error) { return Source{File: path}.Load() }

// Parse is Load for a YAML document already in memory.
func Parse(doc []byte) (*Config, error) {
	if doc == nil {
		doc = []byte{}
	}
	return Source{Default: doc}.Load()
}

func joinErrs(errs []error) error { return errors.Join(errs...) }

func decode(k *koanf.Koanf, file string) (*Config, error) {
	var c Config
	decodeErr := unmarshal(k, &c)
	if file != "" { // plugin paths are relative to the config file
		for i, p := range c.Plugins {
			if p.Path != "" && !filepath.IsAbs(p.Path) {
				c.Plugins[i].Path = filepath.Join(filepath.Dir(file), p.Path)
			}
		}
		c.resolveOriginFiles(filepath.Dir(file)) // origins.go
	}
	if file != "" {
		c.resolveAuthPaths(filepath.Dir(file))
		c.Server.TLS.resolvePaths(filepath.Dir(file))
	}
	c.EnsureDefaults()
	// Report unknown fields and invalid values together, so that one
	// `config check` shows every problem.
	if err := errors.Join(decodeErr, c.Validate()); err != nil {
		return nil, err
	}
	return &c, nil
}

func unmarshal(k *koanf.Koanf, c *Config) error {
	err := k.UnmarshalWithConf("", c, koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.TextUnmarshallerHookFunc()),
			ErrorUnused:      true, // an unknown field is a typo, not a no-op
			WeaklyTypedInput: true,
			TagName:          "koanf",
			Result:           c,
		},
	})
	if err != nil {
		return cleanDecodeError(err)
	}
	return nil
}

// cleanDecodeError turns mapstructure's multi-line error into one error per
// line, joined, so each names its field.
func cleanDecodeError(err error) error {
	var errs []error
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasSuffix(line, "error(s) decoding:") || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		errs = append(errs, errors.New(readableDecodeError(strings.TrimSpace(line))))
	}
	if len(errs) == 0 {
		return err
	}
	return errors.Join(errs...)
}

// LoadShards reads only the shard map of the YAML file at path: other
// sections may be absent (or present, and are then checked for unknown
// fields but not validated). For `edgecache shardmap plan`.
func LoadShards(path string) ([]Shard, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	shards, err := shardsOnly(k)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return shards, nil
}

// shardsOnly decodes a document and validates its shard map alone.
func shardsOnly(k *koanf.Koanf) ([]Shard, error) {
	var c Config
	if err := unmarshal(k, &c); err != nil {
		return nil, err
	}
	c.EnsureDefaults()
	var errs []error
	if err := c.Validate(); err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *FieldError
			if errors.As(e, &fe) && strings.HasPrefix(fe.Field, "shards") {
				errs = append(errs, e)
			}
		}
	}
	if len(c.Shards) == 0 {
		errs = append(errs, &FieldError{Field: "shards", Msg: "no shards: the embedded store has no shard map"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c.Shards, nil
}

// invalidKeys matches mapstructure's "'shards[1]' has invalid keys: x, y".
var invalidKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)

// readableDecodeError names unknown fields the way Validate names fields.
func readableDecodeError(line string) string {
	m := invalidKeys.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	where := m[1]
	if where == "" || where == "config.Config" {
		return "unknown field(s): " + m[2]
	}
	return where + ": unknown field(s): " + m[2]
}

// applyPort listens on 0.0.0.0:$PORT when PORT is set and no file sets
// server.listen (the embedded default's address is a default, not a
// choice). EDGECACHE_SERVER_LISTEN and --listen, applied after, still win.
func applyPort(tree map[string]any, s Source) {
	var port string
	for _, kv := range s.Environ {
		if v, ok := strings.CutPrefix(kv, PortEnv+"="); ok {
			port = v
		}
	}
	if port == "" {
		return
	}
	if s.File != "" {
		if srv, ok := tree["server"].(map[string]any); ok && srv["listen"] != nil {
			return
		}
	}
	setPath(tree, []string{"server", "listen"}, "0.0.0.0:"+port)
}
