package compress_test

import (
	"bytes"
	"fmt"

	"github.com/edgecache/edgecache/internal/compress"
)

// At fill time: encode a compressible body once per coding; the identity
// body of a large entry is decoded back from one of them.
func ExampleEncode() {
	types := compress.NewTypes(nil)
	fmt.Println(types.Compressible("application/json; charset=utf-8"), types.Compressible("image/png"))

	body := bytes.Repeat([]byte(`{"items":[1,2,3,4,5,6,7,8,9,10]}`), 32)
	for _, c := range []compress.Coding{compress.Brotli, compress.Zstd, compress.Gzip} {
		enc, err := compress.Encode(nil, c, body)
		if err != nil {
			fmt.Println(err)
			continue
		}
		dec, err := compress.Decode(nil, c, enc, int64(len(body)))
		fmt.Println(c, len(enc) < len(body), err == nil && bytes.Equal(dec, body))
	}
	// Output:
	// true false
	// br true true
	// zstd true true
	// gzip true true
}
