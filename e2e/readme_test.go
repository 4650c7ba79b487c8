package e2e

import (
	"os"
	"testing"

	"github.com/ambassador-proxy/ambassador/config"
)

// TestREADMEReference checks that the README's configuration reference is
// the one the code has (regenerate with `go run ./config/internal/genref`).
func TestREADMEReference(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := config.SpliceReference(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if want != string(data) {
		t.Fatal("README.md's configuration reference is out of date: run `go run ./config/internal/genref`")
	}
}
