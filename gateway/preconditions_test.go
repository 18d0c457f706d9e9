package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edgecache/edgecache/internal/testutil"
)

// TestPreconditionsOnHits (RFC 9110 §13.1, §13.2.2): a hit evaluates the
// request's preconditions against the stored response in their order —
// If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since — and
// answers 412, 304 or the entry; the origin is not asked.
func TestPreconditionsOnHits(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Respond("/p", 200, "page", "Cache-Control", "max-age=60", "Etag", `"v1"`, "Last-Modified", "Mon, 02 Jan 2023 03:04:05 GMT")
	_, base := semanticsGateway(t, o, 0, nil)
	get(t, base+"/p")
	for _, tc := range []struct {
		name string
		kv   []string
		want int
	}{
		{"If-Match matches", []string{"If-Match", `"v1"`}, 200},
		{"If-Match any", []string{"If-Match", `*`}, 200},
		{"If-Match fails", []string{"If-Match", `"v2"`}, 412},
		{"If-Match weak never matches", []string{"If-Match", `W/"v1"`}, 412},
		{"If-Match fails before If-None-Match", []string{"If-Match", `"v2"`, "If-None-Match", `"v1"`}, 412},
		{"If-Unmodified-Since before", []string{"If-Unmodified-Since", "Sun, 01 Jan 2023 00:00:00 GMT"}, 412},
		{"If-Unmodified-Since after", []string{"If-Unmodified-Since", "Tue, 03 Jan 2023 00:00:00 GMT"}, 200},
		{"If-Match wins over If-Unmodified-Since", []string{"If-Match", `"v1"`, "If-Unmodified-Since", "Sun, 01 Jan 2023 00:00:00 GMT"}, 200},
		{"If-None-Match", []string{"If-None-Match", `"v1"`}, 304},
		{"If-None-Match weak", []string{"If-None-Match", `W/"v1"`}, 304},
		{"If-Modified-Since", []string{"If-Modified-Since", "Tue, 03 Jan 2023 00:00:00 GMT"}, 304},
		{"If-Match and If-None-Match", []string{"If-Match", `"v1"`, "If-None-Match", `"v1"`}, 304},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := o.Total()
			req, _ := http.NewRequest(http.MethodGet, base+"/p", nil)
			req.Header.Set("Accept-Encoding", "identity")
			for i := 0; i < len(tc.kv); i += 2 {
				req.Header.Set(tc.kv[i], tc.kv[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "edgecache; hit") || o.Total() != before {
				t.Fatalf("got %d %q (%q), want %d from the cache", resp.StatusCode, resp.Header.Get("Cache-Status"), b, tc.want)
			}
			if tc.want != 200 && len(b) != 0 {
				t.Fatalf("a %d with a body: %q", tc.want, b)
			}
		})
	}
}
