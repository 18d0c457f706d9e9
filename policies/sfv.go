package policies

import (
	"errors"
	"strings"
)

// ErrInvalidStructuredField is returned for a field that is not a valid
// RFC 8941 Structured Field: the whole field is invalid, never a part.
var ErrInvalidStructuredField = errors.New("policies: invalid structured field")

// ItemKind is the type of an RFC 8941 bare item.
type ItemKind uint8

// The bare item types of RFC 8941 §3.3.
const (
	KindInteger ItemKind = iota + 1
	KindDecimal
	KindString
	KindToken
	KindByteSequence
	KindBoolean
)

// Item is an RFC 8941 bare item. Which field holds the value depends on
// Kind: Int for integers, Decimal for decimals, Bool for booleans, String
// for strings (unescaped), tokens and byte sequences (the base64 text
// between the colons, not decoded).
type Item struct {
	Kind    ItemKind
	Int     int64
	Decimal float64
	String  string
	Bool    bool
	// Params are the item's parameters, in order, duplicates folded (the
	// last value wins, at the first key's place). Only set by
	// ParseDictionary.
	Params []Param
}

// Param is one parameter of an item or an inner list.
type Param struct {
	Key   string
	Value Item // its Params are always empty
}

// Member is one member of an RFC 8941 Dictionary: a key with an item or
// an inner list, and parameters.
type Member struct {
	Key string
	// Item is the value when the member is not an inner list. A key with no
	// "=" is the Boolean true.
	Item        Item
	IsInnerList bool
	Inner       []Item
	Params      []Param
}

// ParseDictionary parses the lines of a Dictionary field (RFC 8941 §4.2.2),
// as http.Header holds them (several lines are one field, joined by
// commas), appending the members to dst. A key that appears twice keeps
// its first place and its last value (§3.2). An invalid field returns dst
// unchanged with ErrInvalidStructuredField: nothing of it is used.
//
// It allocates only for what it cannot point into the input: parameters,
// inner lists, strings with escapes, a field on several lines, and dst
// growing past its capacity.
func ParseDictionary(dst []Member, values []string) ([]Member, error) {
	return parseDictionary(dst, joinLines(values), true)
}

// parseDictionary parses s; keep says whether parameters and inner-list
// members are collected or only checked.
func parseDictionary(dst []Member, s string, keep bool) ([]Member, error) {
	p := sfParser{s: s, keep: keep}
	n := len(dst)
	p.skipSP()
	for p.i < len(p.s) {
		m, ok := p.member()
		if !ok {
			return dst[:n], ErrInvalidStructuredField
		}
		dst = addMember(dst, n, m)
		p.skipOWS()
		if p.i == len(p.s) {
			break
		}
		if p.s[p.i] != ',' {
			return dst[:n], ErrInvalidStructuredField
		}
		p.i++
		p.skipOWS()
		if p.i == len(p.s) {
			return dst[:n], ErrInvalidStructuredField // trailing comma
		}
	}
	return dst, nil
}

// joinLines combines field lines as RFC 9110 §5.3 does. One line (the
// common case) is returned as it is, without allocating.
func joinLines(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values, ", ")
}

func addMember(dst []Member, from int, m Member) []Member {
	for i := from; i < len(dst); i++ {
		if dst[i].Key == m.Key {
			dst[i] = m
			return dst
		}
	}
	return append(dst, m)
}

// sfParser is a cursor over a field value. keep says whether parameters
// are collected (ParseTargeted does not need them and so does not
// allocate for them).
type sfParser struct {
	s    string
	i    int
	keep bool
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) member() (Member, bool) {
	var m Member
	var ok bool
	if m.Key, ok = p.key(); !ok {
		return m, false
	}
	if p.i < len(p.s) && p.s[p.i] == '=' {
		p.i++
		if p.i < len(p.s) && p.s[p.i] == '(' {
			m.IsInnerList = true
			if m.Inner, ok = p.innerList(); !ok {
				return m, false
			}
		} else if m.Item, ok = p.bareItem(); !ok {
			return m, false
		}
	} else {
		m.Item = Item{Kind: KindBoolean, Bool: true}
	}
	m.Params, ok = p.params()
	return m, ok
}

// key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.i == len(p.s) || !isLCAlpha(p.s[p.i]) && p.s[p.i] != '*' {
		return "", false
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.i++
	}
	return p.s[start:p.i], true
}

func (p *sfParser) params() ([]Param, bool) {
	var ps []Param
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		v := Item{Kind: KindBoolean, Bool: true}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if v, ok = p.bareItem(); !ok {
				return nil, false
			}
		}
		if !p.keep {
			continue
		}
		replaced := false
		for j := range ps {
			if ps[j].Key == k {
				ps[j].Value, replaced = v, true
			}
		}
		if !replaced {
			ps = append(ps, Param{Key: k, Value: v})
		}
	}
	return ps, true
}

func (p *sfParser) innerList() ([]Item, bool) {
	p.i++ // '('
	var items []Item
	for p.i < len(p.s) {
		p.skipSP()
		if p.i == len(p.s) {
			return nil, false
		}
		if p.s[p.i] == ')' {
			p.i++
			return items, true
		}
		it, ok := p.bareItem()
		if !ok {
			return nil, false
		}
		if it.Params, ok = p.params(); !ok {
			return nil, false
		}
		if p.keep {
			items = append(items, it)
		}
		if p.i == len(p.s) || (p.s[p.i] != ' ' && p.s[p.i] != ')') {
			return nil, false
		}
	}
	return nil, false
}

func (p *sfParser) bareItem() (Item, bool) {
	if p.i == len(p.s) {
		return Item{}, false
	}
	switch c := p.s[p.i]; {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		start := p.i
		p.i++
		for p.i < len(p.s) && (isTchar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/') {
			p.i++
		}
		return Item{Kind: KindToken, String: p.s[start:p.i]}, true
	case c == ':':
		p.i++
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != ':' {
			if !isBase64(p.s[p.i]) {
				return Item{}, false
			}
			p.i++
		}
		if p.i == len(p.s) {
			return Item{}, false
		}
		p.i++
		return Item{Kind: KindByteSequence, String: p.s[start : p.i-1]}, true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return Item{Kind: KindBoolean, Bool: p.s[p.i-1] == '1'}, true
		}
	}
	return Item{}, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 3 fraction digits), RFC 8941 §4.2.4.
func (p *sfParser) number() (Item, bool) {
	neg := false
	if p.s[p.i] == '-' {
		neg = true
		p.i++
	}
	var n int64
	var frac, fracDigits int64
	intDigits, dot := 0, false
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == '.' && !dot {
			if intDigits == 0 || intDigits > 12 {
				return Item{}, false
			}
			dot = true
			continue
		}
		if !isDigit(c) {
			break
		}
		if dot {
			fracDigits++
			if fracDigits > 3 {
				return Item{}, false
			}
			frac = frac*10 + int64(c-'0')
			continue
		}
		intDigits++
		if intDigits > 15 {
			return Item{}, false
		}
		n = n*10 + int64(c-'0')
	}
	if intDigits == 0 || (dot && fracDigits == 0) {
		return Item{}, false
	}
	if !dot {
		if neg {
			n = -n
		}
		return Item{Kind: KindInteger, Int: n}, true
	}
	d := float64(n)
	scale := [...]float64{1, 10, 100, 1000}[fracDigits]
	d += float64(frac) / scale
	if neg {
		d = -d
	}
	return Item{Kind: KindDecimal, Decimal: d}, true
}

// str parses a String: printable ASCII, with only \" and \\ escapes.
func (p *sfParser) str() (Item, bool) {
	p.i++ // '"'
	start := p.i
	escaped := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 == len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return Item{}, false
			}
			escaped = true
			p.i += 2
		case c == '"':
			raw := p.s[start:p.i]
			p.i++
			if escaped {
				raw = unescapeSF(raw)
			}
			return Item{Kind: KindString, String: raw}, true
		case c < 0x20 || c > 0x7e:
			return Item{}, false
		default:
			p.i++
		}
	}
	return Item{}, false // unterminated
}

func unescapeSF(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isBase64(c byte) bool  { return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=' }

// isTchar is RFC 9110 §5.6.2's tchar.
func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
