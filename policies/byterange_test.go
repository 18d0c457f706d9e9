package policies

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	type br = ByteRange
	tests := []struct {
		name   string
		values []string
		size   int64
		want   []ByteRange
		res    RangeResult
	}{
		{"single", []string{"bytes=0-99"}, 1000, []br{{0, 100}}, RangeSatisfiable},
		{"middle", []string{"bytes=10-19"}, 1000, []br{{10, 10}}, RangeSatisfiable},
		{"one byte", []string{"bytes=5-5"}, 1000, []br{{5, 1}}, RangeSatisfiable},
		{"suffix", []string{"bytes=-100"}, 1000, []br{{900, 100}}, RangeSatisfiable},
		{"suffix longer than size", []string{"bytes=-5000"}, 1000, []br{{0, 1000}}, RangeSatisfiable},
		{"open", []string{"bytes=990-"}, 1000, []br{{990, 10}}, RangeSatisfiable},
		{"end past size cut", []string{"bytes=900-5000"}, 1000, []br{{900, 100}}, RangeSatisfiable},
		{"unit case-insensitive", []string{"Bytes=0-0"}, 1000, []br{{0, 1}}, RangeSatisfiable},
		{"whitespace", []string{"bytes= 0 - 9 ,  20-29 "}, 1000, []br{{0, 10}, {20, 10}}, RangeSatisfiable},
		{"several", []string{"bytes=0-9,20-29,-10"}, 1000, []br{{0, 10}, {20, 10}, {990, 10}}, RangeSatisfiable},
		{"empty members skipped", []string{"bytes=,0-9,,"}, 1000, []br{{0, 10}}, RangeSatisfiable},
		{"one unsatisfiable of two", []string{"bytes=2000-,0-9"}, 1000, []br{{0, 10}}, RangeSatisfiable},
		{"whole", []string{"bytes=0-"}, 1000, []br{{0, 1000}}, RangeSatisfiable},

		{"unsatisfiable start", []string{"bytes=1000-"}, 1000, nil, RangeUnsatisfiable},
		{"unsatisfiable all", []string{"bytes=1000-1001,2000-"}, 1000, nil, RangeUnsatisfiable},
		{"suffix zero", []string{"bytes=-0"}, 1000, nil, RangeUnsatisfiable},

		{"absent", nil, 1000, nil, RangeIgnore},
		{"two lines", []string{"bytes=0-1", "bytes=2-3"}, 1000, nil, RangeIgnore},
		{"other unit", []string{"items=0-1"}, 1000, nil, RangeIgnore},
		{"no unit", []string{"0-1"}, 1000, nil, RangeIgnore},
		{"no dash", []string{"bytes=5"}, 1000, nil, RangeIgnore},
		{"reversed", []string{"bytes=9-0"}, 1000, nil, RangeIgnore},
		{"negative", []string{"bytes=-1-5"}, 1000, nil, RangeIgnore},
		{"plus sign", []string{"bytes=+1-5"}, 1000, nil, RangeIgnore},
		{"garbage", []string{"bytes=a-b"}, 1000, nil, RangeIgnore},
		{"overflow", []string{"bytes=0-99999999999999999999"}, 1000, nil, RangeIgnore},
		{"invalid member spoils all", []string{"bytes=0-9,x"}, 1000, nil, RangeIgnore},
		{"overlap more than size", []string{"bytes=0-999,0-999"}, 1000, nil, RangeIgnore},
		{"only empty", []string{"bytes="}, 1000, nil, RangeIgnore},
		{"empty representation", []string{"bytes=-5"}, 0, nil, RangeIgnore},
		{"too many", []string{"bytes=" + strings.Repeat("0-0,", MaxRanges) + "0-0"}, 100000, nil, RangeIgnore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := ParseRange(nil, tt.values, tt.size)
			if res != tt.res || len(got) != len(tt.want) || len(got) > 0 && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseRange = %v, %v; want %v, %v", got, res, tt.want, tt.res)
			}
		})
	}
}

// TestParseRangeData runs testdata/range (its header says the format).
func TestParseRangeData(t *testing.T) {
	f, err := os.Open("testdata/range")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	cases := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 3 {
			t.Fatalf("testdata/range:%d: want size | field | want, got %q", n, line)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
		if err != nil {
			t.Fatalf("testdata/range:%d: %v", n, err)
		}
		var values []string
		for _, v := range strings.Split(parts[1], " || ") {
			values = append(values, strings.TrimSpace(v))
		}
		wantWords := strings.Fields(parts[2])
		var want []ByteRange
		var wantRes RangeResult
		switch wantWords[0] {
		case "200":
			wantRes = RangeIgnore
		case "416":
			wantRes = RangeUnsatisfiable
		case "206":
			wantRes = RangeSatisfiable
			if len(wantWords) != 2 {
				t.Fatalf("testdata/range:%d: 206 needs its ranges", n)
			}
			for _, r := range strings.Split(wantWords[1], ",") {
				a, b, _ := strings.Cut(r, "+")
				start, err1 := strconv.ParseInt(a, 10, 64)
				length, err2 := strconv.ParseInt(b, 10, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("testdata/range:%d: bad range %q", n, r)
				}
				want = append(want, ByteRange{start, length})
			}
		default:
			t.Fatalf("testdata/range:%d: bad want %q", n, parts[2])
		}
		cases++
		t.Run(fmt.Sprintf("%d:%s", n, parts[1]), func(t *testing.T) {
			got, res := ParseRange(nil, values, size)
			if res != wantRes || len(got) != len(want) || len(got) > 0 && !reflect.DeepEqual(got, want) {
				t.Fatalf("testdata/range:%d: ParseRange(%q, %d) = %v, %v; want %v, %v", n, values, size, got, res, want, wantRes)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases < 40 {
		t.Fatalf("read only %d cases", cases)
	}
}

func TestParseRangeAllocs(t *testing.T) {
	v := []string{"bytes=100-199"}
	ok := true
	if n := testing.AllocsPerRun(100, func() {
		var buf [1]ByteRange
		rs, _ := ParseRange(buf[:0], v, 1000)
		var cr [64]byte
		ok = ok && string(AppendContentRange(cr[:0], rs[0], 1000)) == "bytes 100-199/1000"
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
	if !ok {
		t.Fatal("wrong Content-Range")
	}
	if got := string(AppendUnsatisfiedRange(nil, 1000)); got != "bytes */1000" {
		t.Fatalf("unsatisfied %q", got)
	}
}

// TestParseRangeMatchesServeContent: for valid fields, the ranges and the
// status match what net/http's ServeContent answers from a real server.
func TestParseRangeMatchesServeContent(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	for _, rng := range []string{"bytes=0-99", "bytes=-100", "bytes=990-", "bytes=900-5000", "bytes=0-9,20-29", "bytes=2000-,0-9", "bytes=1000-", "bytes=0-999,0-999", "bytes=0-1,5-9,-3"} {
		t.Run(rng, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Range", rng)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ranges, res := ParseRange(nil, []string{rng}, int64(len(body)))
			wantStatus := map[RangeResult]int{RangeIgnore: 200, RangeSatisfiable: 206, RangeUnsatisfiable: 416}[res]
			if resp.StatusCode != wantStatus {
				t.Fatalf("ServeContent %d, ParseRange %v", resp.StatusCode, res)
			}
			switch {
			case res == RangeUnsatisfiable:
				if cr := resp.Header.Get("Content-Range"); cr != string(AppendUnsatisfiedRange(nil, int64(len(body)))) {
					t.Fatalf("Content-Range %q", cr)
				}
			case res == RangeSatisfiable && len(ranges) == 1:
				r := ranges[0]
				if cr := resp.Header.Get("Content-Range"); cr != string(AppendContentRange(nil, r, int64(len(body)))) || !bytes.Equal(got, body[r.Start:r.Start+r.Length]) {
					t.Fatalf("Content-Range %q body %q", cr, got)
				}
			case res == RangeSatisfiable:
				m := NewMultipart(ranges, "text/plain", int64(len(body)))
				var ours bytes.Buffer
				if n, err := m.WriteTo(&ours, body); err != nil || n != m.Length || int64(ours.Len()) != m.Length {
					t.Fatalf("WriteTo = %d, %v; Length %d, wrote %d", n, err, m.Length, ours.Len())
				}
				// Same bytes but for the boundary.
				_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				_, ourParams, _ := mime.ParseMediaType(m.ContentType)
				theirs := strings.ReplaceAll(string(got), params["boundary"], "B")
				mine := strings.ReplaceAll(ours.String(), ourParams["boundary"], "B")
				if theirs != mine {
					t.Fatalf("multipart differs:\n%q\n%q", theirs, mine)
				}
				if cl, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); cl != m.Length {
					t.Fatalf("Content-Length %d, ours %d", cl, m.Length)
				}
				// And it reads back as the ranges.
				mr := multipart.NewReader(bytes.NewReader(ours.Bytes()), ourParams["boundary"])
				for i, r := range ranges {
					p, err := mr.NextPart()
					if err != nil {
						t.Fatalf("part %d: %v", i, err)
					}
					b, _ := io.ReadAll(p)
					if !bytes.Equal(b, body[r.Start:r.Start+r.Length]) || p.Header.Get("Content-Range") != string(AppendContentRange(nil, r, int64(len(body)))) {
						t.Fatalf("part %d: %q %q", i, b, p.Header)
					}
				}
			}
		})
	}
}

func TestMultipartWrongBody(t *testing.T) {
	m := NewMultipart([]ByteRange{{0, 1}, {2, 1}}, "", 10)
	if _, err := m.WriteTo(io.Discard, make([]byte, 5)); err == nil {
		t.Fatal("a body of the wrong size was written")
	}
}

// FuzzParseRange: never panics; satisfiable ranges lie inside the
// representation and together are no larger than it.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-5", "bytes=5-", "bytes=,,", "bytes=9-0", "bytes=1000-", "BYTES=0-0,1-1"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, s string, size int64) {
		rs, res := ParseRange(nil, []string{s}, size)
		if res != RangeSatisfiable {
			if len(rs) != 0 {
				t.Fatalf("%q: %v with ranges %v", s, res, rs)
			}
			return
		}
		var total int64
		for _, r := range rs {
			if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
				t.Fatalf("%q size %d: bad range %v", s, size, r)
			}
			total += r.Length
		}
		if total > size || len(rs) > MaxRanges {
			t.Fatalf("%q: %d bytes in %d ranges of %d", s, total, len(rs), size)
		}
	})
}
