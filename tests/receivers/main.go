// A receiver built from the README's Go snippets, as tests/unit/security/test_readme_receivers.py
// runs it: the test writes verify.go and decrypt.go beside this file, each a snippet as written
// in the README ("Receiving signed webhooks", "Receiving encrypted payloads"), and builds the
// three. Alone, this directory does not build: verify and decrypt are the README's.
//
// Usage: receiver BODY_FILE HEADERS_FILE, with WEBHOOK_SECRET and DUGAA_KEY in the environment;
// prints the plaintext, or says which step refused the request and exits 1.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	body, err := os.ReadFile(os.Args[1])
	check("reading the body", err)
	headers, err := readHeaders(os.Args[2])
	check("reading the headers", err)
	check("verify", verify(os.Getenv("WEBHOOK_SECRET"), body, headers))
	plaintext, err := decrypt(os.Getenv("DUGAA_KEY"), body)
	check("decrypt", err)
	os.Stdout.Write(plaintext)
}

// readHeaders reads a JSON object of header names and values into the http.Header a Go server
// hands its handler (names in canonical form).
func readHeaders(path string) (http.Header, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sent map[string]string
	if err := json.Unmarshal(text, &sent); err != nil {
		return nil, err
	}
	headers := http.Header{}
	for name, value := range sent {
		headers.Set(name, value)
	}
	return headers, nil
}

func check(step string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
		os.Exit(1)
	}
}
