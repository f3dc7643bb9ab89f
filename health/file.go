package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// FileValue is the number at the start of a track_file's file; a missing or
// unreadable file, or one without a number, counts 0.
func FileValue(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// initFile writes init_file's value when the file is missing, or always with
// overwrite.
func initFile(f *config.TrackFile) error {
	if !f.InitFile {
		return nil
	}
	if _, err := os.Stat(f.File); err == nil && !f.Overwrite {
		return nil
	}
	return os.WriteFile(f.File, []byte(strconv.Itoa(f.InitValue)+"\n"), 0o644)
}

// watchFile reports the file's value whenever it changes, from inotify events on
// its directory (so that the file may be created, replaced or removed).
type fileWatch struct {
	f     *config.TrackFile
	ino   *os.File
	value int
}

func newFileWatch(f *config.TrackFile) (*fileWatch, error) {
	if err := initFile(f); err != nil {
		return nil, fmt.Errorf("%s: track_file %s: init_file: %w", f.Pos, f.Name, err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	// When a writer has closed the file, or it was renamed or removed: not on
	// each write, which may find it truncated and not yet written (a passing 0).
	const mask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(f.File), mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: track_file %s: watch %s: %w", f.Pos, f.Name, filepath.Dir(f.File), err)
	}
	return &fileWatch{f: f, ino: os.NewFile(uintptr(fd), "inotify"), value: FileValue(f.File)}, nil
}

func (w *fileWatch) run(ctx context.Context, out chan<- Update) {
	go func() {
		<-ctx.Done()
		w.ino.Close()
	}()
	base := filepath.Base(w.f.File)
	buf := make([]byte, 4096)
	for {
		n, err := w.ino.Read(buf)
		if err != nil {
			return
		}
		changed := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
			if strings.TrimRight(name, "\x00") == base {
				changed = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if !changed {
			continue
		}
		if v := FileValue(w.f.File); v != w.value {
			w.value = v
			send(ctx, out, Update{Kind: KindFile, Name: w.f.Name, Value: v})
		}
	}
}
