package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// reach reports whether from can open a TCP connection to a listener on to's addr
// within timeout.
func reach(t *testing.T, from, to *lab.Host, addr netip.Addr, timeout time.Duration) bool {
	t.Helper()
	var ln net.Listener
	err := to.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s: %v", to.Name, err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = from.Do(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
	return err == nil
}

func TestHostsReachEachOther(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2, client := l.Hosts[0], l.Hosts[1], l.Client
	if got, want := h1.IPv4.String(), "192.0.2.11/24"; got != want {
		t.Errorf("h1 IPv4 = %s, want %s", got, want)
	}
	if got, want := h2.IPv6.String(), "2001:db8::12/64"; got != want {
		t.Errorf("h2 IPv6 = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		from, to *lab.Host
		addr     netip.Addr
	}{
		{h1, h2, h2.IPv4.Addr()},
		{h2, h1, h1.IPv6.Addr()},
		{client, h1, h1.IPv4.Addr()},
		{client, h2, h2.IPv6.Addr()},
	} {
		if !reach(t, tc.from, tc.to, tc.addr, 5*time.Second) { // bounded; a loaded machine may take more than a second for the first ARP
			t.Errorf("%s cannot reach %s at %v", tc.from.Name, tc.to.Name, tc.addr)
		}
	}
	if l.Host("h2") != h2 || l.Host("client") != client || l.Host("nope") != nil {
		t.Error("Host does not find hosts by name")
	}
}

func TestCutAndRestore(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	if reach(t, h2, h1, h1.IPv4.Addr(), 500*time.Millisecond) {
		t.Fatal("h1 still reachable after Cut")
	}
	var state netlink.LinkOperState
	h1.Netlink(func(h *netlink.Handle) error {
		link, err := h.LinkByName("eth0")
		if err == nil {
			state = link.Attrs().OperState
		}
		return err
	})
	if err := h1.Restore(); err != nil {
		t.Fatal(err)
	}
	// h2's ARP entry for h1 went incomplete during the cut; its next retry
	// comes within a second.
	if !reach(t, h2, h1, h1.IPv4.Addr(), 3*time.Second) {
		t.Fatal("h1 unreachable after Restore")
	}
	if state == netlink.OperUp {
		t.Errorf("h1's eth0 stayed up while cut")
	}
}

func TestRunAndStart(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	out, err := h.Run(context.Background(), "ip", "-br", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "192.0.2.11/24") {
		t.Errorf("ip addr in h1 = %q, want h1's address", out)
	}
	p, err := h.Start("sh", "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(p.Output(), "started") })
	if err := p.Stop(time.Second); err == nil {
		t.Error("Stop of a sleeping process: want its signal as the exit error")
	}
	if _, err := h.Run(context.Background(), "false"); err == nil {
		t.Error("Run of false: want an error")
	}
}

func TestCapture(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2}, "tcpdump")
	h1, h2 := l.Hosts[0], l.Hosts[1]
	c, err := h2.Capture("udp port 9")
	if err != nil {
		t.Fatal(err)
	}
	err = h1.Do(func() error {
		conn, err := net.Dial("udp", netip.AddrPortFrom(h2.IPv4.Addr(), 9).String())
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte("xvrrp-capture"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	frames, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 1 || !bytes.HasSuffix(frames[0].Data, []byte("xvrrp-capture")) {
		t.Fatalf("captured %d frames, want the one UDP datagram h1 sent", len(frames))
	}
	if !bytes.Equal(frames[0].Data[6:12], h1.MAC) {
		t.Errorf("source MAC %x, want h1's %v", frames[0].Data[6:12], h1.MAC)
	}
}

func TestPcapRoundTrip(t *testing.T) {
	want := []lab.Frame{
		{Time: time.Unix(1700000000, 123456000), Data: []byte{1, 2, 3}},
		{Time: time.Unix(1700000001, 0), Data: bytes.Repeat([]byte{0xff}, 60)},
	}
	var buf bytes.Buffer
	if err := lab.WritePcap(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := lab.ReadPcap(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := lab.ReadPcap(strings.NewReader("not a pcap file at all....")); err == nil {
		t.Error("ReadPcap of garbage: want an error")
	}
}

// snapshot is what a lab could leave behind: namespaces, root-namespace links and
// processes.
type snapshot struct {
	namespaces []string
	links      []string
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], lab.NamePrefix) {
			s.namespaces = append(s.namespaces, f[0])
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		s.links = append(s.links, l.Attrs().Name)
	}
	slices.Sort(s.links)
	return s
}

func checkNothingLeft(t *testing.T, before snapshot, namespaces []string, pids []int) {
	t.Helper()
	after := takeSnapshot(t)
	for _, ns := range namespaces {
		if slices.Contains(after.namespaces, ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if diff := cmp.Diff(before.links, after.links); diff != "" {
		t.Errorf("root namespace links changed (-before +after):\n%s", diff)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after close", pid)
		}
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	labtest.Require(t)
	before := takeSnapshot(t)
	l, err := lab.New(context.Background(), lab.Options{Hosts: 2, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Hosts[0].Start("sleep", "600")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	dir := l.Dir
	ns := l.Namespaces()
	if len(ns) != 4 {
		t.Errorf("namespaces = %v, want switch, h1, h2, client", ns)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, before, ns, []int{p.Pid()})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("scratch dir %s left behind", dir)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestMain doubles as the helper process of TestTeardownOnPanicSignalAndKill: with
// XVRRP_LAB_HELPER set it builds a lab, prints its namespaces and the pid of a
// process in it, then ends as the variable says, instead of running tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("XVRRP_LAB_HELPER"); mode != "" {
		helper(mode)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	l, err := lab.New(context.Background(), lab.Options{Hosts: 1})
	if err != nil {
		panic(err)
	}
	if mode != "sigkill" {
		defer l.Close()
	}
	p, err := l.Hosts[0].Start("sleep", "600")
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString("namespaces " + strings.Join(l.Namespaces(), " ") + "\npid " + strconv.Itoa(p.Pid()) + "\n")
	if mode == "panic" {
		panic("helper panics with a lab open")
	}
	time.Sleep(30 * time.Second) // until signalled
}

func TestTeardownOnPanicSignalAndKill(t *testing.T) {
	labtest.Require(t)
	for _, tc := range []struct {
		mode   string
		signal syscall.Signal
	}{
		{"panic", 0},
		{"sigint", syscall.SIGINT},
		{"sigterm", syscall.SIGTERM},
		{"sigkill", syscall.SIGKILL}, // cleaned by the next lab's sweep
	} {
		t.Run(tc.mode, func(t *testing.T) {
			before := takeSnapshot(t)
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "XVRRP_LAB_HELPER="+tc.mode)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var namespaces []string
			var pids []int
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) > 1 && f[0] == "namespaces" {
					namespaces = f[1:]
				}
				if len(f) == 2 && f[0] == "pid" {
					pid, _ := strconv.Atoi(f[1])
					pids = append(pids, pid)
					break
				}
			}
			if len(namespaces) == 0 || len(pids) == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("helper did not report its lab")
			}
			if tc.signal != 0 {
				cmd.Process.Signal(tc.signal)
			}
			go func() { // drain so the child never blocks on a full pipe
				for sc.Scan() {
				}
			}()
			if err := cmd.Wait(); err == nil {
				t.Error("helper exited 0, want a failure exit")
			}
			if tc.mode == "sigkill" {
				// The sleeping process died with its parent (Pdeathsig); the
				// namespaces wait for the next lab, which sweeps them.
				removed := lab.SweepStale()
				for _, ns := range namespaces {
					if !slices.Contains(removed, ns) {
						t.Errorf("sweep did not remove %s (removed %v)", ns, removed)
					}
				}
				waitFor(t, func() bool { return syscall.Kill(pids[0], 0) != nil })
			}
			checkNothingLeft(t, before, namespaces, pids)
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestProber(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := l.Client.StartProber(h1.IPv4.Addr(), 5*time.Millisecond, 2000)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Last() == "h1" })
	const cutFor = 200 * time.Millisecond
	cut := time.Now()
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cutFor)
	if err := h1.Restore(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	waitFor(t, func() bool {
		for _, a := range p.Answers() {
			if a.Sent.After(restored) && a.From == "h1" {
				return true
			}
		}
		return false
	})
	p.Stop()
	outage, err := p.Outage(cut)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing can answer through a cut link: the gap is at least the cut.
	if outage < cutFor {
		t.Errorf("outage %v shorter than the %v the link was cut", outage, cutFor)
	}
	for _, a := range p.Answers() {
		if a.From == h2.Name || a.Also != "" {
			t.Fatalf("probe to h1 answered by %q/%q", a.From, a.Also)
		}
	}
	if _, err := p.Outage(time.Now()); err != lab.ErrNoAnswer {
		t.Errorf("Outage after the last probe: err = %v, want ErrNoAnswer", err)
	}
}
