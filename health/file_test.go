package health

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

func TestFileValue(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int
	}{
		{"7\n", 7}, {"-3", -3}, {"  12 extra words\n", 12}, {"", 0}, {"abc", 0}, {"0x10", 0},
	} {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := FileValue(path); got != tc.want {
			t.Errorf("FileValue(%q) = %d, want %d", tc.content, got, tc.want)
		}
	}
	if got := FileValue(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file: %d, want 0", got)
	}
}

// init_file writes its value only where there is no file, or always with
// overwrite.
func TestInitFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	f := &config.TrackFile{Name: "f", File: path, InitFile: true, InitValue: 5}
	if err := initFile(f); err != nil {
		t.Fatal(err)
	}
	if got := FileValue(path); got != 5 {
		t.Fatalf("created with %d, want 5", got)
	}
	os.WriteFile(path, []byte("9\n"), 0o644)
	initFile(f)
	if got := FileValue(path); got != 9 {
		t.Fatalf("without overwrite the file became %d, want 9 kept", got)
	}
	f.Overwrite = true
	initFile(f)
	if got := FileValue(path); got != 5 {
		t.Fatalf("with overwrite the file is %d, want 5", got)
	}
}

// The watcher reports every change of value, however the file changes: written
// in place, replaced by a rename, removed (0), created again.
func TestFileWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("1\n"), 0o644)
	w, err := newFileWatch(&config.TrackFile{Name: "f", File: path})
	if err != nil {
		t.Fatal(err)
	}
	if w.value != 1 {
		t.Fatalf("first value %d, want 1", w.value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(chan Update, 10)
	go w.run(ctx, out)
	expect := func(how string, want int) {
		t.Helper()
		select {
		case u := <-out:
			if u.Kind != KindFile || u.Name != "f" || u.Value != want {
				t.Fatalf("%s: update %+v, want value %d", how, u, want)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no update", how)
		}
	}
	os.WriteFile(path, []byte("4\n"), 0o644)
	expect("written", 4)
	os.WriteFile(path+".new", []byte("-2\n"), 0o644)
	os.Rename(path+".new", path)
	expect("renamed over", -2)
	os.Remove(path)
	expect("removed", 0)
	os.WriteFile(path, []byte("3\n"), 0o644)
	expect("created", 3)
	os.WriteFile(filepath.Join(dir, "other"), []byte("8\n"), 0o644)
	os.WriteFile(path, []byte("3\n"), 0o644) // same value: no update
	select {
	case u := <-out:
		t.Fatalf("reported %+v for another file or an unchanged value", u)
	case <-time.After(100 * time.Millisecond):
	}
}
