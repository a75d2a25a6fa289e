//go:build tools

// The libraries the README's Go receivers import, kept in go.mod by `go mod tidy` although
// only the snippets the tests take from the README use them (main.go calls those snippets).
package main

import (
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/standard-webhooks/standard-webhooks/libraries/go"
)
