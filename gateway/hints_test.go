package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
)

// TestEarlyHints (RFC 8297, RFC 9110 §15.2): a fill relays the origin's
// 103 to its client and stores the Link fields with the entry; every hit
// sends them as a 103 first; the final response is the origin's, never a
// 1xx; the proxied path relays 1xx without losing the final status;
// HTTP/1.0 clients get no 1xx.
func TestEarlyHints(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.Header().Add("Link", "</app.js>; rel=preload; as=script")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "page")
	}))
	defer origin.Close()
	_, base := startGateway(t, testConfig(origin.URL, nil))
	send := func(method string) (result, []string) {
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints {
				hints = append(hints, h["Link"]...)
			}
			return nil
		}}
		req, _ := http.NewRequest(method, base+"/hinted", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, body: string(b), cacheStatus: resp.Header.Get("Cache-Status"), header: resp.Header}, hints
	}
	want := "</style.css>; rel=preload; as=style|</app.js>; rel=preload; as=script"
	for i, name := range []string{"miss", "hit", "hit again"} {
		r, hints := send(http.MethodGet)
		if r.status != 200 || r.body != "page" || strings.Join(hints, "|") != want {
			t.Fatalf("%s: %d %q %q, hints %q", name, r.status, r.body, r.cacheStatus, hints)
		}
		if hit := strings.HasPrefix(r.cacheStatus, "edgecache; hit"); hit != (i > 0) {
			t.Fatalf("%s: %q", name, r.cacheStatus)
		}
		if r.header.Get("Link") != "" || r.header.Get("Edgecache-Early-Hints") != "" {
			t.Fatalf("%s: the hints leaked into the final response: %v", name, r.header)
		}
	}
	// The pass-through proxy relays them and keeps the final status.
	if r, hints := send(http.MethodPost); r.status != http.StatusNotFound || len(hints) != 2 {
		t.Fatalf("POST: %d, hints %q", r.status, hints)
	}
	// HTTP/1.0: no 1xx (RFC 9110 §15.2).
	for _, path := range []string{"/hinted", "/hinted-miss"} {
		raw := rawDo(t, strings.TrimPrefix(base, "http://"), "GET "+path+" HTTP/1.0\r\nHost: edge.example\r\n\r\n")
		if raw.status != 200 {
			t.Fatalf("HTTP/1.0 %s: the first response is %d", path, raw.status)
		}
	}
}
