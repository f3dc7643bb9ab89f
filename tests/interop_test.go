package tests

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// Proof 5: xvrrp and real keepalived 2.2.7 on one segment, each as master and as
// backup: VRRPv2 with PASS authentication, VRRPv3 at 50 ms, and unicast. The
// master's link is cut, the other takes over; it comes back and preempts.
func TestInteropWithKeepalived(t *testing.T) {
	labtest.Require(t, "keepalived")
	for _, mode := range []struct {
		name string
		n    node
		// unicast: each node's extra lines name the other
		unicast bool
		// vmac: both use use_vmac, and the client's ARP entry for the VIP
		// is the VMAC's MAC throughout
		vmac bool
	}{
		{"v2 PASS 1s", node{version: 2, interval: "1", extra: "authentication {\n auth_type PASS\n auth_pass s3cr3t\n}"}, false, false},
		{"v3 50ms", node{version: 3, interval: "0.05"}, false, false},
		{"v3 unicast 50ms", node{version: 3, interval: "0.05"}, true, false},
		{"v3 50ms use_vmac", node{version: 3, interval: "0.05", extra: "use_vmac"}, false, true},
		// With vmac_xmit_base the switch learns the VMAC's port from
		// gratuitous ARPs alone: a second burst (garp_master_delay), as
		// keepalived sends by default, moves it back if the old master
		// answered a client after the new one's first burst.
		{"v2 1s use_vmac vmac_xmit_base", node{version: 2, interval: "1", extra: "use_vmac\nvmac_xmit_base\ngarp_master_delay 1"}, false, true},
	} {
		for _, xvrrpMaster := range []bool{true, false} {
			name := mode.name + ", keepalived master"
			if xvrrpMaster {
				name = mode.name + ", xvrrp master"
			}
			t.Run(name, func(t *testing.T) {
				l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
				h1, h2 := l.Hosts[0], l.Hosts[1]
				n1, n2 := mode.n, mode.n
				n1.prio, n2.prio = 150, 100
				if mode.unicast {
					n1.extra = fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s\n}", h1.IPv4.Addr(), h2.IPv4.Addr())
					n2.extra = fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s\n}", h2.IPv4.Addr(), h1.IPv4.Addr())
				}
				start := func(h *lab.Host, n node, xvrrp bool) *lab.Proc {
					if xvrrp {
						x, err := h.StartXvrrp(xvrrpBin, nodeConfig(n))
						if err != nil {
							t.Fatal(err)
						}
						return x.Proc
					}
					k, err := h.StartKeepalived(nodeConfig(n))
					if err != nil {
						t.Fatal(err)
					}
					return k.Proc
				}
				for _, h := range l.Hosts {
					if err := h.StartResponder(); err != nil {
						t.Fatal(err)
					}
				}
				timeout := 15 * time.Second
				wait := func(p *lab.Proc, s string, n int) {
					t.Helper()
					deadline := time.Now().Add(timeout)
					for strings.Count(p.Output(), s) < n {
						if time.Now().After(deadline) {
							t.Fatalf("%s: no %d× %q within %v:\n%s", p.Host.Name, n, s, timeout, p.Output())
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				// The master first, so the backup never finds the segment silent.
				p1 := start(h1, n1, xvrrpMaster)
				wait(p1, "(VI_1) Entering MASTER STATE", 1)
				p2 := start(h2, n2, !xvrrpMaster)
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("h1:\n%s\nh2:\n%s", p1.Output(), p2.Output())
					}
				})
				wait(p2, "(VI_1) Entering BACKUP STATE", 1)
				prober, err := l.Client.StartProber(vip4, 10*time.Millisecond, 6000)
				if err != nil {
					t.Fatal(err)
				}
				defer prober.Stop()
				answeredBy(t, prober, "h1")
				vmacHeld := func() {
					t.Helper()
					if mac := clientNeigh(t, l, vip4); mode.vmac && !bytes.Equal(mac, vmac51) {
						t.Errorf("the client's ARP entry for the VIP is %v, want the VMAC %v", mac, vmac51)
					}
				}
				vmacHeld()
				time.Sleep(3 * time.Second / 2)
				if n := strings.Count(p2.Output(), "Entering MASTER STATE"); n != 0 {
					t.Fatalf("the backup became master while the master ran:\n%s", p2.Output())
				}

				h1.Cut()
				wait(p2, "(VI_1) Entering MASTER STATE", 1)
				answeredBy(t, prober, "h2")
				vmacHeld()
				h1.Restore()
				wait(p1, "(VI_1) Entering MASTER STATE", 2)
				wait(p2, "(VI_1) Entering BACKUP STATE", 2)
				answeredBy(t, prober, "h1")
				vmacHeld()
				for _, a := range prober.Answers() {
					if a.Also != "" {
						t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
					}
				}
			})
		}
	}
}
