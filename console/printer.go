package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"lanchat/termtext"
)

// Caps on what one plain event and one log line may print (termtext):
// far above anything lanchat prints (a chat line is at most 16 KiB).
const (
	maxPlain   = 64 << 10
	maxLogLine = 8 << 10
)

// Printer writes events either as plain lines or as JSON objects, one per
// line, under one lock.
type Printer struct {
	mu   sync.Mutex // protects w
	w    io.Writer
	json bool
	now  func() time.Time
}

// NewPrinter writes to w; asJSON selects JSON lines.
func NewPrinter(w io.Writer, asJSON bool) *Printer {
	return &Printer{w: w, json: asJSON, now: time.Now}
}

// SetWriter switches the destination (the terminal's writer once readline
// is up).
func (p *Printer) SetWriter(w io.Writer) {
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()
}

// emit prints one event: its JSON form or its plain line. The plain line
// is prefixed with the time of day unless bare is set.
func (p *Printer) emit(ev Event, plain string, bare bool) {
	p.emitAt(p.now(), ev, plain, bare)
}

// emitAt is emit for an event that happened at (a line of one's own,
// printed once delivered, carries the time it was written). A nil ev is a
// line for people only: nothing is written in JSON mode.
func (p *Printer) emitAt(at time.Time, ev Event, plain string, bare bool) {
	var b bytes.Buffer
	if p.json {
		if ev == nil {
			return // a line for people only
		}
		b.WriteString(`{"event":`)
		writeJSON(&b, ev.Kind())
		b.WriteString(`,"ts":`)
		writeJSON(&b, p.now().Format(time.RFC3339Nano))
		body, err := json.Marshal(ev)
		if err != nil {
			// Every event is plain data; this would be a bug.
			body, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
		}
		if len(body) > 2 { // more than {}
			b.WriteByte(',')
			b.Write(termtext.EscapeJSON(b.AvailableBuffer(), body[1:]))
		} else {
			b.WriteByte('}')
		}
		b.WriteByte('\n')
	} else {
		if plain == "" {
			return
		}
		if !bare {
			b.WriteString(at.Format("[15:04:05] "))
		}
		// Every plain line passes the one terminal sanitiser; only the
		// console's own style marks become escape codes (render).
		render(&b, plain)
		if plain[len(plain)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Write(b.Bytes())
}

func writeJSON(b *bytes.Buffer, v any) {
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(termtext.EscapeJSON(b.AvailableBuffer(), enc))
}

// render writes a plain line: its text through the terminal sanitiser,
// and each style mark (style.go) as the fixed sequence it stands for.
// Nothing else can become an escape code: a mark is NUL and one byte, and
// no string from the network holds a NUL (they are checked at decode, and
// a stray one would only pick one of the fixed sequences).
func render(b *bytes.Buffer, plain string) {
	for plain != "" {
		i := strings.IndexByte(plain, markByte)
		if i < 0 {
			i = len(plain)
		}
		b.Write(termtext.AppendSanitized(b.AvailableBuffer(), plain[:i], maxPlain, true))
		if i+1 >= len(plain) {
			return
		}
		b.WriteString(markCodes[plain[i+1]])
		plain = plain[i+2:]
	}
}

// ms converts a duration to fractional milliseconds for JSON.
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// fmtDur prints a duration in milliseconds with 3 decimals, as ping does.
func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3f ms", ms(d)) }

// Write writes b as it is, under the output lock: log lines reach a
// terminal this way, through readline, so they do not garble the prompt.
func (p *Printer) Write(b []byte) (int, error) {
	safe := safeLine(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(safe); err != nil {
		return 0, err
	}
	return len(b), nil
}

// LogWriter is where log lines go; the console points it at the terminal
// while the prompt is up.
type LogWriter struct {
	mu sync.Mutex // protects w
	w  io.Writer
}

// NewLogWriter writes to w until the console redirects it.
func NewLogWriter(w io.Writer) *LogWriter { return &LogWriter{w: w} }

func (l *LogWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	w := l.w
	l.mu.Unlock()
	// Log lines carry peer-supplied values too.
	if _, err := w.Write(safeLine(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// set redirects the writer and returns the previous destination.
func (l *LogWriter) set(w io.Writer) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.w
	l.w = w
	return old
}

// safeLine is a log line through the sanitiser, still ending its line
// when it was cut.
func safeLine(b []byte) []byte {
	out := termtext.AppendSanitized(nil, string(b), maxLogLine, true)
	if len(b) > 0 && b[len(b)-1] == '\n' && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}
