package twemharness

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// KeysFile is the name of the key list shared by every vector case.
const KeysFile = "keys.json"

// KeyList is testdata/twemproxy/keys.json: the keys every case placed, in
// order. A key that is valid UTF-8 is stored as {"s": key}; any other key as
// {"hex": hex bytes}.
type KeyList struct {
	Comment string    `json:"comment"`
	Keys    []KeyJSON `json:"keys"`
}

// KeyJSON is one key of a KeyList.
type KeyJSON struct {
	S   *string `json:"s,omitempty"`
	Hex string  `json:"hex,omitempty"`
}

// Bytes returns the key.
func (k KeyJSON) Bytes() ([]byte, error) {
	if k.S != nil {
		return []byte(*k.S), nil
	}
	return hex.DecodeString(k.Hex)
}

// EncodeKey stores key in the readable form when it can.
func EncodeKey(key []byte) KeyJSON {
	if utf8.Valid(key) {
		s := string(key)
		return KeyJSON{S: &s}
	}
	return KeyJSON{Hex: hex.EncodeToString(key)}
}

// CaseServer is one server of a vector case, in nutcracker config order.
type CaseServer struct {
	Conf   string `json:"conf"`   // the line in nutcracker's servers list
	Name   string `json:"name"`   // what nutcracker hashes: the Node.Name to use
	Weight int    `json:"weight"` // the Node.Weight to use
}

// Case is one golden file: where nutcracker put each key of the key list
// for one pool configuration.
type Case struct {
	Comment      string       `json:"comment"`
	Nutcracker   string       `json:"nutcracker"`
	Hash         string       `json:"hash"`
	Distribution string       `json:"distribution"`
	HashTag      string       `json:"hash_tag"`
	Servers      []CaseServer `json:"servers"`
	KeysFile     string       `json:"keys_file"`
	// Placement holds one digit per key of the key list: the index in
	// Servers of the server that nutcracker stored that key on.
	Placement string `json:"placement"`
}

// WriteJSON writes v as indented JSON, keeping each element of a key list on
// one line so the files diff well.
func WriteJSON(path string, v any) error {
	var buf bytes.Buffer
	switch t := v.(type) {
	case KeyList:
		c, _ := json.Marshal(t.Comment)
		fmt.Fprintf(&buf, "{\n  \"comment\": %s,\n  \"keys\": [\n", c)
		for i, k := range t.Keys {
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			sep := ","
			if i == len(t.Keys)-1 {
				sep = ""
			}
			fmt.Fprintf(&buf, "    %s%s\n", b, sep)
		}
		buf.WriteString("  ]\n}\n")
	default:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ReadJSON decodes path into v, rejecting unknown fields.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
