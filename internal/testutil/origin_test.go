package testutil

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// answer is what fetch read: the status, header and body.
type answer struct {
	StatusCode int
	Header     http.Header
}

func fetch(t *testing.T, ctx context.Context, url string, kv ...string) (answer, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header}, string(b)
}

func TestOrigin(t *testing.T) {
	o := NewOrigin(t)
	o.Handle("/n", func(w http.ResponseWriter, r *http.Request, n int) {
		Reply(w, 200, "n="+strconv.Itoa(n), "Cache-Control", "max-age=5", "X-A", "1", "X-A", "2")
	})
	o.Respond("/gone", 410, "gone", "Cache-Control", "max-age=60")
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		resp, body := fetch(t, ctx, o.URL+"/n", "X-Req", strconv.Itoa(i))
		if resp.StatusCode != 200 || body != "n="+strconv.Itoa(i) || resp.Header.Get("Cache-Control") != "max-age=5" || len(resp.Header["X-A"]) != 2 {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	if resp, body := fetch(t, ctx, o.URL+"/gone"); resp.StatusCode != 410 || body != "gone" {
		t.Fatalf("/gone: %d %q", resp.StatusCode, body)
	}
	if resp, _ := fetch(t, ctx, o.URL+"/none"); resp.StatusCode != 404 {
		t.Fatalf("unscripted path: %d, want 404", resp.StatusCode)
	}
	o.Default(func(w http.ResponseWriter, r *http.Request, n int) { Reply(w, 200, "default "+r.URL.Path) })
	if _, body := fetch(t, ctx, o.URL+"/none"); body != "default /none" {
		t.Fatalf("default handler: %q", body)
	}
	if o.Count("/n") != 2 || o.Count("/none") != 2 || o.Count("/other") != 0 || o.Total() != 5 {
		t.Fatalf("counts: /n %d, /none %d, total %d", o.Count("/n"), o.Count("/none"), o.Total())
	}
	if last := o.Last("/n"); last == nil || last.Header.Get("X-Req") != "2" || last.Method != "GET" {
		t.Fatalf("last head %+v", last)
	}
	if reqs := o.Requests("/n"); len(reqs) != 2 || reqs[0].Header.Get("X-Req") != "1" {
		t.Fatalf("heads %v", reqs)
	}
	if o.Last("/other") != nil {
		t.Fatal("a head for a path never requested")
	}
}

func TestOriginDelay(t *testing.T) {
	o := NewOrigin(t)
	o.Respond("/d", 200, "late")
	o.SetDelay(200 * time.Millisecond)
	start := time.Now()
	if _, body := fetch(t, context.Background(), o.URL+"/d"); body != "late" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("%q after %v, want late after 200ms", body, time.Since(start))
	}
	// A client that hangs up ends the wait: the handler does not run.
	o.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/d", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a minute's delay answered within 100ms")
	}
	o.SetDelay(0)
	if _, body := fetch(t, context.Background(), o.URL+"/d"); body != "late" {
		t.Fatalf("after the delay is lifted: %q", body)
	}
}
