package entry_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
)

func Example() {
	origin := http.Header{
		"Content-Type":      {"text/plain"},
		"Set-Cookie":        {"session=secret"},
		"Transfer-Encoding": {"chunked"},
	}
	stored := http.Header{}
	entry.Filter(stored, origin)

	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := entry.Entry{
		Status:     200,
		StoredAt:   now,
		FreshUntil: now.Add(time.Minute),
		Header:     stored,
		Body:       []byte("hello"),
	}
	val := entry.Encode(nil, &e)

	m, _ := entry.Peek(val) // cheap: the fixed header only
	fmt.Println(m.Status, m.FreshUntil-m.StoredAt)

	var got entry.Entry
	if err := entry.Decode(val, &got); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Header, string(got.Body))
	// Output:
	// 200 60000
	// map[Content-Type:[text/plain]] hello
}
