package compress_test

import (
	"fmt"

	"github.com/edgecache/edgecache/internal/compress"
)

// At fill time: encode a compressible body once per coding. At hit time:
// pick the coding for the request's Accept-Encoding.
func ExampleChoose() {
	types := compress.NewTypes(nil)
	fmt.Println(types.Compressible("application/json; charset=utf-8"), types.Compressible("image/png"))

	body := []byte(`{"items":[1,2,3,4,5,6,7,8,9,10]}`)
	have := compress.Set(0)
	for _, c := range []compress.Coding{compress.Brotli, compress.Gzip} {
		if _, err := compress.Encode(nil, c, body); err == nil {
			have = have.With(c)
		}
	}
	fmt.Println(compress.Choose([]string{"gzip, deflate, br, zstd"}, have))
	fmt.Println(compress.Choose([]string{"br;q=0.5, gzip"}, have))
	fmt.Println(compress.Choose(nil, have))
	// Output:
	// true false
	// br
	// gzip
	// identity
}
