package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/tests/lab/labtest"
)

// testPinDir returns a pin directory of this test's own under /sys/fs/bpf,
// removed when the test ends.
func testPinDir(t *testing.T) string {
	t.Helper()
	dir := fmt.Sprintf("/sys/fs/bpf/xvrrp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func pinNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		names = append(names, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSecondLoadRefused: one datapath per pin directory. A second Load on it is
// refused with ErrPinDirInUse naming the holder, and leaves the first one's pins
// and maps as they were; after Close the directory is free again.
func TestSecondLoadRefused(t *testing.T) {
	labtest.Require(t)
	dir := testPinDir(t)
	first, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	k := key(51, FamilyIPv4)
	want := Instance{Version: 3, State: StateMaster, LeaseUntilNs: 12345}
	if err := first.PutInstance(k, want); err != nil {
		t.Fatal(err)
	}
	firstInfo, err := first.objs.Instances.Info()
	if err != nil {
		t.Fatal(err)
	}
	firstID, _ := firstInfo.ID()
	pins := pinNames(t, dir)

	second, err := Load(Options{PinDir: dir})
	if err == nil {
		second.Close()
		t.Fatal("a second Load on the same pin directory succeeded")
	}
	if !errors.Is(err, ErrPinDirInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second Load: %v, want ErrPinDirInUse naming pid %d", err, os.Getpid())
	}
	if got := pinNames(t, dir); !slices.Equal(got, pins) {
		t.Errorf("pins after the refused Load: %v, want %v", got, pins)
	}
	pinned, err := ebpf.LoadPinnedMap(filepath.Join(dir, "instances"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if info, err := pinned.Info(); err != nil {
		t.Fatal(err)
	} else if id, _ := info.ID(); id != firstID {
		t.Errorf("pinned instances map is #%d after the refused Load, want the first's #%d", id, firstID)
	}
	if got, err := first.Instance(k); err != nil || got != want {
		t.Errorf("first datapath's instance after the refused Load: %+v, %v; want %+v", got, err, want)
	}

	if _, err := Load(Options{PinDir: dir, Observe: true}); err != nil {
		t.Errorf("Load to observe a held pin directory: %v", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatalf("Load after the holder closed: %v", err)
	}
	if got, err := again.Instance(k); err != nil || got != want {
		t.Errorf("adopted instance: %+v, %v; want %+v", got, err, want)
	}
	if err := again.Remove(); err != nil {
		t.Fatal(err)
	}
	third, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatalf("Load after the holder removed the datapath: %v", err)
	}
	third.Remove()
}
