package policies

import (
	"strings"
	"testing"
)

func TestAppendAcceptLanguage(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"one", []string{"en"}, "en"},
		{"order of equals ignored", []string{"fr, en"}, "en,fr"},
		{"case", []string{"EN-us, De"}, "de,en-us"},
		{"whitespace", []string{"  en ,\tfr ;  q=0.5 "}, "en,fr;q=0.5"},
		{"q order", []string{"de;q=0.5, en;q=0.9, fr"}, "fr,en;q=0.9,de;q=0.5"},
		{"q trailing zeros", []string{"en;q=0.500"}, "en;q=0.5"},
		{"q small", []string{"en;q=0.05"}, "en;q=0.05"},
		{"q three digits", []string{"en;q=0.125"}, "en;q=0.125"},
		{"q=1 dropped", []string{"en;q=1.000"}, "en"},
		{"Q upper", []string{"en;Q=0.5"}, "en;q=0.5"},
		{"q=0 excluded", []string{"en, fr;q=0"}, "en"},
		{"q=0.000 excluded", []string{"fr;q=0.000"}, ""},
		{"duplicate keeps highest", []string{"en;q=0.2, EN;q=0.8"}, "en;q=0.8"},
		{"lines", []string{"en", "fr;q=0.5"}, "en,fr;q=0.5"},
		{"invalid q counts as 1", []string{"en;q=2, fr;q=0.5"}, "en,fr;q=0.5"},
		{"other params dropped", []string{"en;x=y;q=0.5"}, "en;q=0.5"},
		{"star", []string{"*;q=0.1, en"}, "en,*;q=0.1"},
		{"empty members", []string{",, en ,,"}, "en"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendAcceptLanguage(nil, tt.in)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Different meanings stay different.
	for _, pair := range [][2]string{{"en, fr;q=0.5", "en;q=0.5, fr"}, {"en", "en-us"}, {"en;q=0.5", "en;q=0.4"}} {
		if string(AppendAcceptLanguage(nil, []string{pair[0]})) == string(AppendAcceptLanguage(nil, []string{pair[1]})) {
			t.Errorf("%q and %q normalize the same", pair[0], pair[1])
		}
	}
}

func TestAppendAcceptLanguageMany(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= maxLanguages; i++ {
		b.WriteString("x-" + strings.Repeat("a", i+1) + " , ")
	}
	got := string(AppendAcceptLanguage(nil, []string{b.String()}))
	if got != string(AppendListValue(nil, []string{b.String()})) {
		t.Fatalf("too many ranges not normalized as a list: %q", got)
	}
}

func TestAppendListValue(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"trim", []string{"  a  "}, "a"},
		{"OWS around commas", []string{"a ,\tb,  c"}, "a,b,c"},
		{"inner space kept", []string{"a b, c"}, "a b,c"},
		{"case kept", []string{"Mobile"}, "Mobile"},
		{"empty members", []string{",a,,b,"}, "a,b"},
		{"lines joined", []string{"a", " b "}, "a,b"},
		{"quoted comma kept", []string{`"x , y" , z`}, `"x , y",z`},
		{"escaped quote", []string{`"a\", b", c`}, `"a\", b",c`},
		{"empty", []string{"", " "}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendListValue(nil, tt.in)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendVaryValue(t *testing.T) {
	if got := string(AppendVaryValue(nil, "Accept-Language", []string{"FR, en"})); got != "en,fr" {
		t.Fatalf("Accept-Language: %q", got)
	}
	if got := string(AppendVaryValue(nil, "X-Device", []string{" Mobile , x"})); got != "Mobile,x" {
		t.Fatalf("X-Device: %q", got)
	}
}

func TestAppendVaryValueAllocs(t *testing.T) {
	al := []string{"de-DE;q=0.5, en-US, fr;q=0.8, *;q=0.1"}
	other := []string{" a , b "}
	if n := testing.AllocsPerRun(100, func() {
		var buf [128]byte
		AppendVaryValue(buf[:0], "Accept-Language", al)
		AppendVaryValue(buf[:0], "X-Other", other)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// FuzzAppendAcceptLanguage: never panics, and normalizing is idempotent
// (a normalized value normalizes to itself).
func FuzzAppendAcceptLanguage(f *testing.F) {
	for _, s := range []string{"en, fr;q=0.5", "de;q=0.500,EN", ";q=0", ",,", "en;q=1.5", `"a,b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := string(AppendAcceptLanguage(nil, []string{s}))
		if twice := string(AppendAcceptLanguage(nil, []string{once})); twice != once {
			t.Fatalf("%q -> %q -> %q", s, once, twice)
		}
		l := string(AppendListValue(nil, []string{s}))
		if again := string(AppendListValue(nil, []string{l})); again != l {
			t.Fatalf("list %q -> %q -> %q", s, l, again)
		}
	})
}
