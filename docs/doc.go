// Package docs holds edgecache's documentation: the configuration
// reference (configuration.md), operations (operations.md) and the plugin
// authoring guide (plugins.md). It has no code; its tests keep the pages
// true to the code: every field of config.Config is documented with its
// real default and a working environment variable, and the commands the
// pages show exist.
package docs
