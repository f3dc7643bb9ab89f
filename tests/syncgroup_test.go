package tests

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

var vipEth1 = netip.MustParseAddr("198.51.100.1")

// syncConfig is VI_1 on eth0 and VI_2 on eth1 at priority prio, in sync group G1
// when grouped.
func syncConfig(prio int, grouped bool) string {
	group := ""
	if grouped {
		group = "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
	}
	inst := func(name, iface string, vrid int, vip string) string {
		return fmt.Sprintf(`vrrp_instance %s {
    state BACKUP
    interface %s
    virtual_router_id %d
    priority %d
    version 3
    advert_int 0.05
    virtual_ipaddress {
        %s
    }
}
`, name, iface, vrid, prio, vip)
	}
	return "global_defs {\n    vrrp_garp_master_delay 0\n}\n" + group +
		inst("VI_1", "eth0", 51, "192.0.2.1/24") + inst("VI_2", "eth1", 52, "198.51.100.1/24")
}

// A vrrp_sync_group moves together: when h1's eth1 goes down, VI_2 enters FAULT
// and VI_1, on a healthy eth0, follows it into FAULT, so h2 serves both VIPs;
// when eth1 comes back, the group leaves FAULT and h1 preempts both back. Without
// the group, VI_1 stays on h1.
func TestSyncGroup(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2, Client: true, SecondLink: true})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			for _, h := range l.Hosts {
				if err := h.StartResponder(); err != nil {
					t.Fatal(err)
				}
			}
			x1, err := h1.StartXvrrp(xvrrpBin, syncConfig(150, grouped))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			waitLog(t, x1, "(VI_2) Entering MASTER STATE")
			x2, err := h2.StartXvrrp(xvrrpBin, syncConfig(100, grouped))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			waitLog(t, x2, "(VI_2) Entering BACKUP STATE (init)")
			p := probeVIP(t, l, "h1")

			if err := h1.CutLink("eth1"); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_2) Entering FAULT STATE")
			waitLog(t, x2, "(VI_2) Entering MASTER STATE")
			if !grouped {
				time.Sleep(500 * time.Millisecond)
				if n := countIn(x2.Proc, "(VI_1) Entering MASTER STATE"); n != 0 {
					t.Fatalf("VI_1 moved to h2 without a sync group")
				}
				if !hasVIP(t, h1, vip4) || p.Last() != "h1" {
					t.Fatalf("VI_1 left h1 without a sync group (VIP on h1: %v, last answer %q)", hasVIP(t, h1, vip4), p.Last())
				}
				return
			}
			waitLog(t, x1, "(VI_1) Entering FAULT STATE")
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			answeredBy(t, p, "h2")
			if hasVIP(t, h1, vip4) || hasVIP(t, h1, vipEth1) {
				t.Error("h1 kept a VIP in FAULT")
			}
			if !hasVIP(t, h2, vip4) || !hasVIP(t, h2, vipEth1) {
				t.Error("h2 does not hold both VIPs")
			}
			// eth0 never went down: VI_1 is in FAULT only through the group.
			if countIn(x1.Proc, "interface eth0 down") != 0 {
				t.Error("h1's eth0 went down; the test needs it up")
			}

			if err := h1.RestoreLink("eth1"); err != nil {
				t.Fatal(err)
			}
			for _, vi := range []string{"VI_1", "VI_2"} {
				waitForCount(t, x1.Proc, "("+vi+") Entering MASTER STATE", 2)
				waitForCount(t, x2.Proc, "("+vi+") Entering BACKUP STATE", 2)
			}
			answeredBy(t, p, "h1")
			for _, a := range p.Answers() {
				if a.Also != "" {
					t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
				}
			}
		})
	}
}

// waitForCount waits until s occurs n times in the process's output.
func waitForCount(t *testing.T, p *lab.Proc, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for countIn(p, s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q seen %d times, want %d:\n%s", s, countIn(p, s), n, lastLines(p.Output(), 30))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
