package policies

import (
	"net/http"
	"testing"
	"time"
)

func TestETagComparison(t *testing.T) {
	// RFC 9110 §8.8.3.2's table, and malformed tags.
	tests := []struct {
		a, b           string
		strong, weakOK bool
	}{
		{`W/"1"`, `W/"1"`, false, true},
		{`W/"1"`, `W/"2"`, false, false},
		{`W/"1"`, `"1"`, false, true},
		{`"1"`, `"1"`, true, true},
		{`"1"`, `"2"`, false, false},
		{` "1" `, `"1"`, true, true},
		{`1`, `1`, false, false},
		{`""`, `""`, true, true},
		{`"a b"`, `"a b"`, false, false}, // space is not an etagc
		{`w/"1"`, `w/"1"`, false, false}, // the W is upper case
		{`"1`, `"1`, false, false},
		{`"1"x`, `"1"x`, false, false},
		{``, ``, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"~"+tt.b, func(t *testing.T) {
			if got := StrongMatch(tt.a, tt.b); got != tt.strong {
				t.Errorf("StrongMatch = %v", got)
			}
			if got := WeakMatch(tt.a, tt.b); got != tt.weakOK {
				t.Errorf("WeakMatch = %v", got)
			}
		})
	}
}

func TestMatchList(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		etag   string
		strong bool
		want   bool
	}{
		{"star", []string{"*"}, `"x"`, true, true},
		{"second member", []string{`"a", "b"`}, `"b"`, true, true},
		{"second line", []string{`"a"`, `W/"b"`}, `"b"`, false, true},
		{"weak in strong list", []string{`W/"b"`}, `"b"`, true, false},
		{"weak stored in strong list", []string{`"b"`}, `W/"b"`, true, false},
		{"weak ok for none-match", []string{`"b"`}, `W/"b"`, false, true},
		{"garbage then match", []string{`junk, "b"`}, `"b"`, false, true},
		{"no stored etag", []string{`"b"`}, ``, false, false},
		{"comma inside tag", []string{`"a,b"`}, `"a,b"`, true, true},
		{"no match", []string{`"a", "c"`}, `"b"`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchList(tt.values, tt.etag, tt.strong); got != tt.want {
				t.Fatalf("MatchList = %v", got)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	const (
		d0 = "Fri, 14 Mar 2025 12:00:00 GMT" // Last-Modified
		d1 = "Fri, 14 Mar 2025 13:00:00 GMT" // Date
		dB = "Fri, 14 Mar 2025 11:00:00 GMT" // before both
		dA = "Fri, 14 Mar 2025 14:00:00 GMT" // after both
	)
	lm, _ := ParseHTTPDate(d0)
	date, _ := ParseHTTPDate(d1)
	stored := date.Add(30 * time.Minute)
	full := Validators{ETag: `"v1"`, LastModified: lm, Date: date, Stored: stored}
	noLM := Validators{ETag: `"v1"`, Date: date, Stored: stored}
	bare := Validators{Stored: stored}
	tests := []struct {
		name   string
		method string
		h      http.Header
		v      Validators
		want   Precondition
	}{
		{"none", "GET", http.Header{}, full, Proceed},
		{"INM match", "GET", http.Header{"If-None-Match": {`"v1"`}}, full, NotModified},
		{"INM weak match", "HEAD", http.Header{"If-None-Match": {`W/"v1"`}}, full, NotModified},
		{"INM no match", "GET", http.Header{"If-None-Match": {`"v0"`}}, full, Proceed},
		{"INM star", "GET", http.Header{"If-None-Match": {`*`}}, full, NotModified},
		{"INM match on POST", "POST", http.Header{"If-None-Match": {`"v1"`}}, full, PreconditionFailed},
		{"INM beats IMS", "GET", http.Header{"If-None-Match": {`"v0"`}, "If-Modified-Since": {dA}}, full, Proceed},
		{"IMS after LM", "GET", http.Header{"If-Modified-Since": {dA}}, full, NotModified},
		{"IMS equal LM", "GET", http.Header{"If-Modified-Since": {d0}}, full, NotModified},
		{"IMS before LM", "GET", http.Header{"If-Modified-Since": {dB}}, full, Proceed},
		{"IMS uses Date without LM", "GET", http.Header{"If-Modified-Since": {d0}}, noLM, Proceed},
		{"IMS after Date without LM", "GET", http.Header{"If-Modified-Since": {dA}}, noLM, NotModified},
		{"IMS before stored time without Date", "GET", http.Header{"If-Modified-Since": {d1}}, bare, Proceed},
		{"IMS after stored time without Date", "GET", http.Header{"If-Modified-Since": {dA}}, bare, NotModified},
		{"IMS invalid ignored", "GET", http.Header{"If-Modified-Since": {"yesterday"}}, full, Proceed},
		{"IMS two lines ignored", "GET", http.Header{"If-Modified-Since": {dA, dA}}, full, Proceed},
		{"IMS on POST ignored", "POST", http.Header{"If-Modified-Since": {dA}}, full, Proceed},
		{"IM match", "GET", http.Header{"If-Match": {`"v1"`}}, full, Proceed},
		{"IM weak fails", "GET", http.Header{"If-Match": {`W/"v1"`}}, full, PreconditionFailed},
		{"IM no match", "GET", http.Header{"If-Match": {`"v0"`}}, full, PreconditionFailed},
		{"IM beats IUS", "GET", http.Header{"If-Match": {`"v1"`}, "If-Unmodified-Since": {dB}}, full, Proceed},
		{"IUS before LM", "GET", http.Header{"If-Unmodified-Since": {dB}}, full, PreconditionFailed},
		{"IUS after LM", "GET", http.Header{"If-Unmodified-Since": {dA}}, full, Proceed},
		{"IUS no LM", "GET", http.Header{"If-Unmodified-Since": {dA}}, noLM, PreconditionFailed},
		{"IM fails before INM", "GET", http.Header{"If-Match": {`"v0"`}, "If-None-Match": {`"v1"`}}, full, PreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate(tt.method, tt.h, &tt.v); got != tt.want {
				t.Fatalf("Evaluate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIfRange(t *testing.T) {
	lm, _ := ParseHTTPDate("Fri, 14 Mar 2025 12:00:00 GMT")
	strong := Validators{ETag: `"v1"`, LastModified: lm, Date: lm.Add(time.Hour)}
	weakDate := Validators{ETag: `W/"v1"`, LastModified: lm, Date: lm.Add(500 * time.Millisecond)}
	tests := []struct {
		name   string
		values []string
		v      Validators
		want   bool
	}{
		{"absent", nil, strong, true},
		{"strong etag", []string{`"v1"`}, strong, true},
		{"other etag", []string{`"v2"`}, strong, false},
		{"weak etag never", []string{`W/"v1"`}, weakDate, false},
		{"stored weak etag", []string{`"v1"`}, weakDate, false},
		{"date equal strong LM", []string{"Fri, 14 Mar 2025 12:00:00 GMT"}, strong, true},
		{"date later", []string{"Fri, 14 Mar 2025 12:00:01 GMT"}, strong, false},
		{"date equal weak LM", []string{"Fri, 14 Mar 2025 12:00:00 GMT"}, weakDate, false},
		{"date no LM", []string{"Fri, 14 Mar 2025 12:00:00 GMT"}, Validators{ETag: `"v1"`}, false},
		{"garbage", []string{"whatever"}, strong, false},
		{"two lines", []string{`"v1"`, `"v1"`}, strong, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IfRange(tt.values, &tt.v); got != tt.want {
				t.Fatalf("IfRange = %v", got)
			}
		})
	}
}

func TestEvaluateAllocs(t *testing.T) {
	h := http.Header{"If-None-Match": {`"a", W/"b"`}, "If-Modified-Since": {"Fri, 14 Mar 2025 12:00:00 GMT"}}
	stored := http.Header{"Etag": {`"b"`}, "Last-Modified": {"Fri, 14 Mar 2025 11:00:00 GMT"}}
	if n := testing.AllocsPerRun(100, func() {
		v := ValidatorsOf(stored, time.Time{})
		Evaluate("GET", h, &v)
		IfRange([]string{`"b"`}, &v)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// FuzzMatchList: never panics, and a list holding exactly the stored
// strong tag always matches.
func FuzzMatchList(f *testing.F) {
	for _, s := range []string{`"a", W/"b"`, `*`, `junk,"x`, `W/`, `""`} {
		f.Add(s, `"b"`)
	}
	f.Fuzz(func(t *testing.T, list, etag string) {
		MatchList([]string{list}, etag, true)
		MatchList([]string{list}, etag, false)
		if _, weak, ok := opaqueTag(etag); ok && !weak {
			if !MatchList([]string{etag}, etag, true) {
				t.Fatalf("%q does not match itself", etag)
			}
		}
	})
}
