//go:build wasip1

package main

import (
	"errors"
	"unicode/utf8"
)

// config is the plugin's config: {"drop": [...], "drop_prefixes": [...]}.
type config struct {
	drop, dropPrefixes []string
}

var errConfig = errors.New(`stripparams: config: want {"drop": [names], "drop_prefixes": [prefixes]}`)

// parseConfig reads the config's JSON: an object whose fields are the two
// lists of strings. It is the subset of JSON the config can be; anything
// else (another field, a value of another type) is errConfig.
func parseConfig(b []byte) (config, error) {
	var c config
	s := scanner{b: b}
	if !s.consume('{') {
		return c, errConfig
	}
	for first := true; !s.consume('}'); first = false {
		if !first && !s.consume(',') {
			return c, errConfig
		}
		name, ok := s.str()
		if !ok || !s.consume(':') {
			return c, errConfig
		}
		var list *[]string
		switch name {
		case "drop":
			list = &c.drop
		case "drop_prefixes":
			list = &c.dropPrefixes
		default:
			return c, errConfig
		}
		if !s.strings(list) {
			return c, errConfig
		}
	}
	if s.skipSpace(); s.i != len(s.b) {
		return c, errConfig
	}
	return c, nil
}

// scanner reads JSON tokens from b.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// consume skips c (after white space) and reports whether it was there.
func (s *scanner) consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// strings appends an array of strings (or null) to list.
func (s *scanner) strings(list *[]string) bool {
	if s.skipSpace(); len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	if !s.consume('[') {
		return false
	}
	for first := true; !s.consume(']'); first = false {
		if !first && !s.consume(',') {
			return false
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		*list = append(*list, v)
	}
	return true
}

// str reads a string with its escapes.
func (s *scanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	var out []byte
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
		case s.i < len(s.b):
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return "", false
				}
				if r >= 0xd800 && r < 0xdc00 && len(s.b)-s.i >= 2 && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					lo, ok := s.hex4()
					if !ok {
						return "", false
					}
					if lo >= 0xdc00 && lo < 0xe000 {
						r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					} else {
						out = utf8.AppendRune(out, utf8.RuneError)
						r = lo
					}
				}
				out = utf8.AppendRune(out, r) // a lone surrogate is RuneError, as encoding/json makes it
			default:
				return "", false
			}
		}
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}
