package transfer

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A run of placements opens each folder once, holds at most
// maxOpenFolders of them, and never closes the one it is told to keep
// (the partial folder, in use for the rename under way).
func TestFoldersKeep(t *testing.T) {
	dir := t.TempDir()
	for i := range maxOpenFolders + 8 {
		if err := os.Mkdir(filepath.Join(dir, strconv.Itoa(i)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := newFolders(r)
	defer d.close()
	keep, err := d.get("0/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.get("0", nil); again != keep {
		t.Fatal("a folder was opened twice")
	}
	for i := 1; i < maxOpenFolders+8; i++ {
		if _, err := d.get(strconv.Itoa(i)+"/", keep); err != nil {
			t.Fatal(err)
		}
		if len(d.open) > maxOpenFolders {
			t.Fatalf("%d folders open, at most %d allowed", len(d.open), maxOpenFolders)
		}
	}
	if _, err := keep.Stat(); err != nil {
		t.Fatalf("the folder to keep was closed: %v", err)
	}
	if _, err := d.get("missing/", keep); err == nil {
		t.Error("a missing folder was opened")
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.get("file", keep); err == nil {
		t.Error("a file was taken for a folder")
	}
}
