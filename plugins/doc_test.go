// Package plugins_test runs every example plugin (plugins/examples, built
// into plugins/testdata/examples by `make plugins`) through the real host
// and the policies adapter: the examples are the SDKs' tests.
package plugins_test
