package transfer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateFilesChecked(t *testing.T) {
	st := t.TempDir()
	good := record{
		Version: recordVersion, ID: "goodgood", Peer: "ABCDEF", Dir: "receive", State: "interrupted", Hash: "blake3",
		Entries: []recEntry{{Path: "f", Size: 10}}, Tops: map[string]string{"f": "f"}, Created: time.Now(),
	}
	bad := func(f func(r *record)) record {
		r := good
		r.Tops = map[string]string{"f": "f"}
		r.Entries = append([]recEntry(nil), good.Entries...)
		f(&r)
		return r
	}
	recs := map[string]any{
		"aaaaaaaa": "not a record",
		"bbbbbbbb": bad(func(r *record) { r.ID = "cccccccc" }),
		"dddddddd": bad(func(r *record) { r.ID = "dddddddd"; r.Entries[0].Path = "../x" }),
		"eeeeeeee": bad(func(r *record) { r.ID = "eeeeeeee"; r.Next = 5 }),
		"ffffffff": bad(func(r *record) { r.ID = "ffffffff"; r.Offset = 11 }),
		"gggggggg": bad(func(r *record) { r.ID = "gggggggg"; r.Tops["f"] = "../escape" }),
		"hhhhhhhh": bad(func(r *record) { r.ID = "hhhhhhhh"; r.Version = 99 }),
		"iiiiiiii": bad(func(r *record) { r.ID = "iiiiiiii"; r.Offset = 5; r.Prefix = "zz" }),
		"jjjjjjjj": bad(func(r *record) { r.ID = "jjjjjjjj"; r.Dir = "send" }), // no absolute source
		"kkkkkkkk": bad(func(r *record) { r.ID = "kkkkkkkk"; r.Peer = "../../etc" }),
		"llllllll": bad(func(r *record) { r.ID = "llllllll"; r.State = "waiting" }), // a receiver never keeps one
		"goodgood": good,
	}
	for id, r := range recs {
		b, _ := json.Marshal(r)
		os.WriteFile(filepath.Join(st, id+".json"), b, 0o600)
	}
	os.WriteFile(filepath.Join(st, "mmmmmmmm.json"), []byte(`{"version":1,"id":"mmmmmmmm"`), 0o600)
	_, _, b := pair(t, Options{StateDir: st})
	var ids []string
	for _, in := range b.m.List() {
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, ",") != "goodgood" {
		t.Errorf("loaded %v", ids)
	}
}

// TestPartialDamaged: a partial file that no longer matches its
// checkpoint is received again from its start, never trusted.
func TestPartialDamaged(t *testing.T) {
	l, a, b := pair(t, resumeOpts)
	src := filepath.Join(t.TempDir(), "f")
	data := randomFile(t, src, 4<<20)
	l.rate.Store(4 << 20)
	in := a.offer(b, src)
	b.accept(in.ID)
	b.wait(20*time.Second, "progress", progressAt(2<<20))
	b.stop()
	part := filepath.Join(b.dl, partialDir, in.ID, "0")
	f, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("rot"), 1000)
	f.Close()
	l.rate.Store(0)
	b.start()
	a.m.PeerUp(b.id)
	d := a.done(in.ID)
	b.done(in.ID)
	if got, _ := os.ReadFile(filepath.Join(b.dl, "f")); string(got) != string(data) {
		t.Fatal("content differs")
	}
	if d.Info.Wire < int64(len(data))+1<<20 {
		t.Errorf("only %d bytes sent: the damaged part was trusted", d.Info.Wire)
	}
}
