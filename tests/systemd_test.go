package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// notifySocket is a NOTIFY_SOCKET as systemd gives a Type=notify service: the
// messages the daemon sends, in order.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func listenNotify(t *testing.T, dir string) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(dir, "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:k])), "\n") {
				n.msgs, n.at = append(n.msgs, line), append(n.at, time.Now())
			}
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// last is when msg was last received, or the zero time.
func (n *notifySocket) last(msg string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.msgs) - 1; i >= 0; i-- {
		if n.msgs[i] == msg {
			return n.at[i]
		}
	}
	return time.Time{}
}

func (n *notifySocket) waitFor(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !contains(n.messages(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from the daemon; got %q", msg, n.messages())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// startNotified starts `xvrrp run` in the host as systemd starts a Type=notify
// service with WatchdogSec: NOTIFY_SOCKET and WATCHDOG_USEC in its environment.
func startNotified(t *testing.T, h *lab.Host, conf string, n *notifySocket, watchdog time.Duration) *lab.Proc {
	t.Helper()
	pinDir, stateDir := h.XvrrpDirs()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(stateDir, "keepalived.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	p, err := h.Start("env", "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC="+strconv.FormatInt(int64(watchdog/time.Microsecond), 10),
		xvrrpBin, "run", "-f", file, "--pin-dir", pinDir, "--state-dir", stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdNotify runs the daemon as systemd runs deploy/xvrrp.service: it
// says READY=1 once its instances have started, WATCHDOG=1 every half
// WatchdogSec from its event loop, and STOPPING=1 when it stops. Frozen, it
// stops saying WATCHDOG=1; killed and started again as systemd would within
// its lease, it adopts its datapath and keeps the VIP: the backup never takes
// over and the client is answered by it alone.
func TestSystemdNotify(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	// At 1 s adverts the lease is 3 s: time for systemd to notice and restart.
	n1, n2 := node{prio: 150, interval: "1"}, node{prio: 100, interval: "1"}
	const watchdog = 400 * time.Millisecond
	sock := listenNotify(t, l.Dir)
	x1 := startNotified(t, h1, nodeConfig(n1), sock, watchdog)
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	sock.waitFor(t, "READY=1")
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(n2))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	time.Sleep(4 * watchdog)
	msgs := sock.messages()
	if len(msgs) < 3 || msgs[0] != "READY=1" || msgs[1] != "WATCHDOG=1" {
		t.Fatalf("messages %q, want READY=1 then WATCHDOG=1 …", msgs)
	}

	// Frozen: the watchdog goes quiet. systemd would send SIGABRT, then
	// start the service again; the test does what it would.
	x1.Signal(syscall.SIGSTOP)
	frozen := time.Now()
	time.Sleep(watchdog)
	if last := sock.last("WATCHDOG=1"); last.After(frozen.Add(10 * time.Millisecond)) {
		t.Fatalf("WATCHDOG=1 at %v from a frozen daemon (frozen at %v)", last, frozen)
	}
	x1.Signal(syscall.SIGKILL)
	x1.Wait()
	x1b := startNotified(t, h1, nodeConfig(n1), sock, watchdog)
	waitLog(t, x1b, "adopting mastership within the previous run's lease")
	waitLog(t, x1b, "(VI_1) Entering MASTER STATE")
	time.Sleep(time.Second)
	p.Stop()
	if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
		t.Errorf("the backup took over across the watchdog restart:\n%s", x2.Output())
	}
	for _, a := range p.Answers() {
		if a.From != "h1" && a.From != "" || a.Also != "" {
			t.Errorf("probe at %v answered by %q (and %q), want h1 alone", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
	}
	gap, _ := p.Outage(frozen)
	t.Logf("longest gap across freeze, kill and restart: %v", gap)

	x1b.Signal(syscall.SIGTERM)
	x1b.Wait()
	msgs = sock.messages()
	if got := msgs[len(msgs)-1]; got != "STOPPING=1" {
		t.Errorf("last message %q, want STOPPING=1 (all: %q)", got, msgs)
	}
	if n := strings.Count(strings.Join(msgs, " "), "READY=1"); n != 2 {
		t.Errorf("READY=1 %d times over two runs: %q", n, msgs)
	}
}

// TestSystemdUnit checks deploy/xvrrp.service with systemd-analyze, pointed
// at the binary the tests built, and that `make install` puts the binary, the
// unit and the manual page where they belong.
func TestSystemdUnit(t *testing.T) {
	labtest.Require(t, "systemd-analyze", "make")
	unit, err := os.ReadFile("../deploy/xvrrp.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "xvrrp.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/sbin/xvrrp", xvrrpBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	dest := t.TempDir()
	cmd := exec.CommandContext(context.Background(), "make", "-C", "..", "install", "DESTDIR="+dest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/local/sbin/xvrrp", "etc/systemd/system/xvrrp.service", "usr/local/share/man/man8/xvrrp.8"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
}
