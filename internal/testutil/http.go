package testutil

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// defaultClient is Do's client when none is given.
var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Do sends method url with body ("" for none) through c (nil: a client
// with a 10 s timeout), with "Authorization: Bearer token" unless token is
// "", and returns the status, the body and the header. A transport error
// fails the test.
func Do(tb testing.TB, c *http.Client, method, url, token, body string) (int, string, http.Header) {
	tb.Helper()
	if c == nil {
		c = defaultClient
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
