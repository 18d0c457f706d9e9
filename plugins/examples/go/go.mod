module github.com/edgecache/edgecache/plugins/examples/go

go 1.24

require github.com/edgecache/edgecache/plugins/sdk/go v0.0.0

replace github.com/edgecache/edgecache/plugins/sdk/go => ../../sdk/go
