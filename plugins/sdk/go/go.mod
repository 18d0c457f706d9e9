module github.com/edgecache/edgecache/plugins/sdk/go

go 1.24
