// Command edgecache is the edgecache HTTP cache gateway.
package main

import (
	"context"
	"os"

	"github.com/edgecache/edgecache/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
