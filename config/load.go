package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// Load reads the YAML file at path, fills defaults and validates the
// result. Any error rejects the file whole.
func Load(path string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	c, err := decode(k)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load for a YAML document already in memory.
func Parse(doc []byte) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(doc), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return decode(k)
}

func decode(k *koanf.Koanf) (*Config, error) {
	var c Config
	err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.TextUnmarshallerHookFunc()),
			ErrorUnused:      true, // an unknown field is a typo, not a no-op
			WeaklyTypedInput: true,
			TagName:          "koanf",
			Result:           &c,
		},
	})
	if err != nil {
		return nil, cleanDecodeError(err)
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
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
		errs = append(errs, errors.New(strings.TrimSpace(line)))
	}
	if len(errs) == 0 {
		return err
	}
	return errors.Join(errs...)
}
