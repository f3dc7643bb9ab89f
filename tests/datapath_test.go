package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

const masterConfig = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.1/24
    }
}
`

// TestDatapathOnVeth attaches the datapath to a real veth in a lab host, hears
// real keepalived adverts, and checks the peer record, the counters, the pinned
// maps' BTF, adoption by a restarted loader, and that Remove leaves nothing.
func TestDatapathOnVeth(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2}, "keepalived", "bpftool")
	h1, h2 := l.Hosts[0], l.Hosts[1]
	pinDir := fmt.Sprintf("/sys/fs/bpf/xvrrp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(pinDir) })

	var (
		dp      *loader.Datapath
		ifindex int
	)
	load := func() {
		t.Helper()
		err := h2.Do(func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			ifindex = ifi.Index
			if dp, err = loader.Load(loader.Options{PinDir: pinDir}); err != nil {
				return err
			}
			return dp.Attach(ifindex)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	load()
	key := loader.InstanceKey{Ifindex: uint32(ifindex), Vrid: 51, Family: loader.FamilyIPv4}
	if err := dp.PutInstance(key, loader.Instance{Version: 3, State: loader.StateBackup, MinIntervalCs: 1, MaxIntervalCs: 4095}); err != nil {
		t.Fatal(err)
	}
	k, err := h1.StartKeepalived(masterConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.WaitLog("(VI_1) Entering MASTER STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	peer, err := dp.Peer(key)
	if err != nil {
		t.Fatalf("no peer record after keepalived's adverts: %v", err)
	}
	age := agent.Monotonic() - time.Duration(peer.LastSeenNs)
	if peer.Priority != 150 || peer.IntervalCs != 5 || peer.Count < 3 || age < 0 || age > time.Second ||
		!strings.HasPrefix(net.IP(peer.Addr[:4]).String(), "192.0.2.11") {
		t.Errorf("peer = %+v (last seen %v ago)", peer, age)
	}
	counters, err := dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if counters[0] < 3 {
		t.Errorf("valid adverts counted: %d, want several", counters[0])
	}

	// bpftool prints the pinned map with the struct's field names. It runs outside
	// `ip netns exec`, which mounts a /sys of its own without /sys/fs/bpf; pins
	// belong to no network namespace.
	out, err := exec.Command("bpftool", "map", "dump", "pinned", pinDir+"/peers").CombinedOutput()
	if err != nil {
		t.Fatalf("bpftool: %v\n%s", err, out)
	}
	for _, field := range []string{`"last_seen_ns"`, `"priority"`, `"interval_cs"`, `"vrid": 51`} {
		if !strings.Contains(string(out), field) {
			t.Errorf("bpftool map dump lacks %s:\n%s", field, out)
		}
	}

	// A restart adopts the pinned links and maps: the peer record survives and
	// keeps counting, the programs were never detached.
	countBefore := peer.Count
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // adverts keep arriving with no loader running
	xdpShown, _ := h2.Run(context.Background(), "ip", "link", "show", "dev", "eth0")
	if !strings.Contains(string(xdpShown), "xdp") {
		t.Errorf("XDP detached when the loader closed:\n%s", xdpShown)
	}
	load()
	peer, err = dp.Peer(key)
	if err != nil || peer.Count <= countBefore+2 {
		t.Errorf("after restart: peer %+v, err %v; want the count to have grown past %d while no loader ran", peer, err, countBefore)
	}

	if err := dp.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(pinDir)
		t.Errorf("pin directory left after Remove: %v", entries)
	}
	if shown := attached(h2, ifindex); strings.Contains(shown, "xdp") || strings.Contains(shown, "tc_fence") {
		t.Errorf("programs still attached after Remove:\n%s", shown)
	}
}
