package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"
)

// wlCompressed is the compressed-hit row: the L1 hit workload from a
// client that accepts br and gzip.
const wlCompressed = "L1 hit, Accept-Encoding br,gzip"

// compressedAE is that row's Accept-Encoding.
const compressedAE = "br, gzip"

// compressedRows are the compressed-hit rows, edgecache and nginx
// interleaved. edgecache sends the br body it encoded once, on the first request that asked for br;
// nginx (gzip on, its default level 1) compresses the cached body on
// every request, since gzip_static serves only files on disk, never a
// proxy_cache entry. Varnish is left out: it compresses only what VCL
// marks with do_gzip, which is a different setup. Each system is first
// checked to answer in the coding the row is about.
func compressedRows(ctx context.Context, s *stack, keysEnv []string, scripts string) ([]tlsRow, error) {
	w := wrkRun{URL: "/", Script: filepath.Join(scripts, "keys.lua"), Env: keysEnv, Header: []string{"Accept-Encoding: " + compressedAE}}
	rows := []tlsRow{
		{wlCompressed, "edgecache", s.edge["edgecache"], []int{s.edgePid["edgecache"]}, w},
		{wlCompressed, "nginx", s.nginxAddr, []int{s.nginxPid}, w},
	}
	want := map[string]string{"edgecache": "br", "nginx": "gzip"}
	for _, r := range rows {
		got, err := codingOf(ctx, "http://"+r.addr+"/products/1")
		if err != nil {
			return nil, err
		}
		if got != want[r.system] {
			return nil, fmt.Errorf("bench: %s answers Accept-Encoding %q with Content-Encoding %q, want %q", r.system, compressedAE, got, want[r.system])
		}
	}
	return rows, nil
}

// codingOf returns the Content-Encoding of url's answer to compressedAE.
func codingOf(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept-Encoding", compressedAE)
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bench: %s: status %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Content-Encoding"), nil
}
