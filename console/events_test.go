package console

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// README.md's table of JSON events lists every field of every event
// struct, and no event that does not exist.
func TestEventsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## JSON events")
	if start < 0 {
		t.Fatal("README.md has no JSON events section")
	}
	text = text[start:]
	if end := strings.Index(text[1:], "\n## "); end >= 0 {
		text = text[:end+1]
	}
	rows := map[string]string{} // event kind → its fields cell
	row := regexp.MustCompile("(?m)^\\| (`[a-z_]+`(?:, `[a-z_]+`)*) \\| (.*) \\|$")
	kind := regexp.MustCompile("`([a-z_]+)`")
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		for _, k := range kind.FindAllStringSubmatch(m[1], -1) {
			rows[k[1]] = m[2]
		}
	}
	kinds := map[string]bool{}
	for _, ev := range Events {
		kind := ev.Kind()
		kinds[kind] = true
		cell, ok := rows[kind]
		if !ok {
			t.Errorf("README.md lists no %q event", kind)
			continue
		}
		for _, field := range jsonFields(reflect.TypeOf(ev)) {
			if !strings.Contains(cell, "`"+field+"`") {
				t.Errorf("README.md's %q row lacks field %q", kind, field)
			}
		}
	}
	for kind := range rows {
		if !kinds[kind] {
			t.Errorf("README.md lists an event %q that does not exist", kind)
		}
	}
}

// jsonFields lists the json names of t's fields, and of the fields of
// the structs they hold.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		out = append(out, jsonFields(f.Type)...)
	}
	return out
}

// Every event marshals with "event" and "ts" first.
func TestEventEnvelope(t *testing.T) {
	var out screen
	p := NewPrinter(&out, true)
	p.emit(EchoEvent{Peer: "bob", Seq: 3}, "", false)
	p.emit(ForgetEvent{}, "", false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"event":"echo","ts":"`) || !strings.Contains(lines[0], `"peer":"bob"`) ||
		!strings.HasPrefix(lines[1], `{"event":"forget","ts":"`) || !strings.HasSuffix(lines[1], `"names":null}`) {
		t.Fatalf("events:\n%s", out.String())
	}
}
