package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"golang.org/x/sys/unix"
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

// The child side of the tests that start Load the way people start daemons. It
// runs when the test binary is started with childEnv set to the pin directory.
const (
	childEnv  = "XVRRP_LOADER_CHILD_PIN_DIR"
	removeEnv = "XVRRP_LOADER_CHILD_REMOVE"
	// attachEnv names the lab namespace the child must be in to attach to its
	// eth0: never anything of the machine's own.
	attachEnv = "XVRRP_LOADER_CHILD_ATTACH_IN"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := child(dir); err != nil {
			fmt.Println("child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var childKey = InstanceKey{Vrid: 51, Family: FamilyIPv4}

// child loads the datapath on the pin directory; the first one attaches it to
// eth0 and writes an instance, the next ones print the instance they adopted.
// It exits without Remove, as a killed daemon would, unless removeEnv is set.
func child(dir string) error {
	d, err := Load(Options{PinDir: dir, Logger: slog.New(slog.NewTextHandler(os.Stdout, nil))})
	if err != nil {
		return err
	}
	if os.Getenv(removeEnv) != "" {
		return d.Remove()
	}
	defer d.Close()
	ns := os.Getenv(attachEnv)
	if ns == "" {
		return nil
	}
	if err := sameNetNS("/run/netns/" + ns); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	childKey.Ifindex = uint32(ifi.Index)
	if got, err := d.Instance(childKey); err == nil {
		fmt.Printf("adopted lease %d\n", got.LeaseUntilNs)
		return nil
	}
	if err := d.Attach(ifi.Index); err != nil {
		return err
	}
	return d.PutInstance(childKey, Instance{Version: 3, State: StateMaster, LeaseUntilNs: 12345})
}

// sameNetNS checks that this process is in the network namespace at path.
func sameNetNS(path string) error {
	var want, got unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return err
	}
	if err := unix.Stat("/proc/self/ns/net", &got); err != nil {
		return err
	}
	if want.Dev != got.Dev || want.Ino != got.Ino {
		return fmt.Errorf("not in network namespace %s", path)
	}
	return nil
}

// runChild starts the test binary as a child under argv (e.g. ip netns exec NS)
// on the pin directory.
func runChild(t *testing.T, dir string, argv ...string) (string, error) {
	return runChildEnv(t, dir, nil, argv...)
}

func runChildEnv(t *testing.T, dir string, env []string, argv ...string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], self)...)
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", strings.Join(argv, " "), out)
	return string(out), err
}

// TestPinsOutliveIPNetnsExec starts Load as `ip netns exec` starts a daemon: in a
// private mount namespace with a fresh sysfs on /sys, where a bpffs mounted on
// /sys/fs/bpf would die with the process. The pins must land in this process's
// bpffs instead and outlive the child: its XDP and TC links stay attached, a
// child started the same way while this process holds the pin directory is
// refused, one started after it adopts the maps, and one that removes the
// datapath leaves nothing here.
func TestPinsOutliveIPNetnsExec(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	dir := testPinDir(t)
	attach := []string{attachEnv + "=" + h.NS}
	out, err := runChildEnv(t, dir, attach, "ip", "netns", "exec", h.NS)
	if err != nil {
		t.Fatalf("first child: %v", err)
	}
	if !strings.Contains(out, "pinning in the mount namespace xvrrp was started from") {
		t.Error("the child did not log where it pinned")
	}
	links, _ := filepath.Glob(filepath.Join(dir, "links", "*"))
	if len(links) != 3 {
		t.Fatalf("link pins in this namespace's %s after the child exited: %v, want 3", dir, links)
	}
	for _, pin := range links {
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			t.Fatalf("load pinned link: %v", err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(pin, "_xdp") && info.XDP().Ifindex == 0 ||
			!strings.HasSuffix(pin, "_xdp") && info.TCX().Ifindex == 0 {
			t.Errorf("link %s detached after the child exited", filepath.Base(pin))
		}
	}
	held, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out, err = runChildEnv(t, dir, attach, "ip", "netns", "exec", h.NS)
	held.Close()
	if want := fmt.Sprintf("%v: held by pid %d", ErrPinDirInUse, os.Getpid()); err == nil || !strings.Contains(out, want) {
		t.Errorf("child on a pin directory this process holds: %v, want it refused with %q", err, want)
	}
	out, err = runChildEnv(t, dir, attach, "ip", "netns", "exec", h.NS)
	if err != nil {
		t.Fatalf("second child: %v", err)
	}
	if !strings.Contains(out, "adopted lease 12345") {
		t.Error("the second child did not adopt the first one's instance")
	}
	if _, err := runChildEnv(t, dir, []string{removeEnv + "=1"}, "ip", "netns", "exec", h.NS); err != nil {
		t.Fatalf("child removing the datapath: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after a child under ip netns exec removed the datapath: %v", dir, err)
	}
}

// TestRefusesPrivateBPFFS: where the only bpffs the pins could go to lives in a
// mount namespace the child has to itself, they would die with it; Load refuses,
// naming the problem and what to do.
func TestRefusesPrivateBPFFS(t *testing.T) {
	labtest.Require(t, "unshare")
	l := labtest.New(t, lab.Options{Hosts: 1})
	mnt := t.TempDir()
	for _, tc := range []struct {
		name string
		dir  string
		argv []string
	}{
		// A pin directory on a bpffs mounted in the child's namespace only.
		{"private bpffs", filepath.Join(mnt, "xvrrp"), []string{"ip", "netns", "exec", l.Hosts[0].NS,
			"unshare", "-m", "sh", "-c", `mount -t bpf bpf "$0" && exec "$1"`, mnt}},
		// No bpffs, and the child is alone in its mount namespace with no
		// ancestor to pin with (PID 1 of a container not given the host's
		// bpffs): a bpffs it mounted would go with the namespace.
		{"alone", testPinDir(t), []string{"ip", "netns", "exec", l.Hosts[0].NS,
			"unshare", "-m", "-p", "-f", "--mount-proc", "sh", "-c", `umount /sys/fs/bpf 2>/dev/null; exec "$0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runChild(t, tc.dir, tc.argv...)
			if err == nil || !strings.Contains(out, ErrPrivateBPFFS.Error()) || !strings.Contains(out, remedy) {
				t.Errorf("Load: %v, want it refused with %q and %q", err, ErrPrivateBPFFS, remedy)
			}
		})
	}
}

// TestMountBPFFSIn mounts bpffs in another process's mount namespace, as Load does
// when the namespace xvrrp was started from has none: it must appear there, not
// here, and every thread of this process must stay in its own namespace.
func TestMountBPFFSIn(t *testing.T) {
	labtest.Require(t, "unshare")
	dir := t.TempDir()
	other := exec.Command("unshare", "-m", "--propagation", "private", "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Wait()
	defer other.Process.Kill()
	own, err := mountNS("self")
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(other.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ns, err := mountNS(pid); err == nil && ns != own {
			break // unshare has made its namespace
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare -m did not make a mount namespace")
		}
	}
	ns, err := os.Open("/proc/" + pid + "/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if got, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", ns.Fd())); got == own {
		t.Fatalf("the other process is in this namespace, %s", own)
	}
	t.Cleanup(func() {
		// Should the mount land here, it must not outlive the test.
		if onBPFFS(dir) {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	if err := mountBPFFSIn(ns, dir); err != nil {
		t.Fatal(err)
	}
	if !onBPFFS("/proc/" + pid + "/root" + dir) {
		t.Errorf("%s is not on bpffs in the other namespace", dir)
	}
	if onBPFFS(dir) {
		t.Errorf("%s is on bpffs in this namespace", dir)
	}
	// The thread that entered the other namespace exits after its goroutine
	// returns; until it has, it runs nothing of ours.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stray := ""
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/mnt")
		for _, task := range tasks {
			if ns, err := os.Readlink(task); err == nil && ns != own {
				stray = fmt.Sprintf("%s is %s, want %s", task, ns, own)
			}
		}
		if stray == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: a thread stayed in the other namespace", stray)
		}
	}
}

// TestMountsBPFFSInOrigin: started with ip netns exec from a mount namespace
// without bpffs on /sys/fs/bpf (as machines of this kind boot), Load mounts bpffs
// there, in the namespace it was started from, not in its own, and the pins
// outlive it. The origin is a shell that is PID 1 of a PID namespace of its own,
// so that it is the outermost ancestor the child sees, in a mount namespace of
// its own, so that unmounting /sys/fs/bpf touches nothing of the machine's; the
// pins go with it.
func TestMountsBPFFSInOrigin(t *testing.T) {
	labtest.Require(t, "unshare")
	l := labtest.New(t, lab.Options{Hosts: 1})
	dir := fmt.Sprintf("/sys/fs/bpf/xvrrp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	script := `umount /sys/fs/bpf 2>/dev/null; stat -f -c "before: %T" /sys/fs/bpf
ip netns exec "$0" "$2" || exit 1
stat -f -c "after: %T" /sys/fs/bpf; ls "$1" "$1/links"`
	out, err := runChildEnv(t, dir, []string{attachEnv + "=" + l.Hosts[0].NS},
		"unshare", "-m", "-p", "-f", "--mount-proc", "sh", "-c", script, l.Hosts[0].NS, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before: sysfs", `msg="mounted bpffs"`, "after: bpf_fs", "instances", "_xdp", "_tc_ingress"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is in this namespace: %v", dir, err)
	}
}
