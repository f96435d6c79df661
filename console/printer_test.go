package console

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"lanchat/termtext"
)

// Whatever reaches the printer, nothing a terminal acts on comes out:
// plain events, JSON events, log lines through Write and the LogWriter.
func TestPrinterSanitises(t *testing.T) {
	hostile := "x\x1b]0;title\x07\x1b[2J\u202eevil\u009b\xff\r\n[12:00:00] <alice> forged"
	check := func(t *testing.T, out string, keepNL bool) {
		t.Helper()
		for _, r := range out {
			if termtext.Unsafe(r) && !(keepNL && r == '\n') {
				t.Fatalf("output holds %U: %q", r, out)
			}
		}
	}
	t.Run("plain", func(t *testing.T) {
		var buf bytes.Buffer
		p := NewPrinter(&buf, false)
		p.now = func() time.Time { return time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC) }
		p.emit(ChatEvent{}, "<mallory> "+hostile, false)
		check(t, buf.String(), true)
		if got := strings.Count(buf.String(), "\n"); got != 2 {
			// the event's own line end and the one inside the value
			t.Errorf("%d lines: %q", got, buf.String())
		}
	})
	t.Run("json", func(t *testing.T) {
		var buf bytes.Buffer
		p := NewPrinter(&buf, true)
		p.emit(ChatEvent{Text: hostile}, "", false)
		line := strings.TrimSuffix(buf.String(), "\n")
		check(t, line, false)
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["text"] != strings.ToValidUTF8(hostile, "\ufffd") {
			t.Errorf("JSON %s decodes to %q (%v)", line, ev["text"], err)
		}
	})
	t.Run("log lines", func(t *testing.T) {
		var buf bytes.Buffer
		p := NewPrinter(&buf, false)
		l := NewLogWriter(p)
		line := "level=WARN msg=refused peer=" + hostile + "\n"
		if n, err := l.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		long := strings.Repeat("\x1b", 100<<10) + "\n"
		p.Write([]byte(long))
		check(t, buf.String(), true)
		if !strings.HasSuffix(buf.String(), "\n") || len(buf.String()) > 2*maxLogLine {
			t.Errorf("cut log line: %d bytes, ends %q", buf.Len(), buf.String()[buf.Len()-20:])
		}
	})
}
