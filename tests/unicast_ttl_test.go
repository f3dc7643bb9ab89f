package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// keepalived takes a unicast instance's adverts at any TTL (a unicast peer may
// be routers away), and can send them with unicast_ttl. xvrrp, backup to a
// keepalived master whose unicast adverts carry TTL 64, follows it: before,
// XDP dropped them for their TTL and both were master.
func TestUnicastTTLFromKeepalived(t *testing.T) {
	labtest.Require(t, "keepalived")
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	unicast := func(self, peer *lab.Host, extra string) string {
		return fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s\n}\n%s", self.IPv4.Addr(), peer.IPv4.Addr(), extra)
	}
	k, err := h1.StartKeepalived(nodeConfig(node{prio: 150, extra: unicast(h1, h2, "unicast_ttl 64")}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, k, "(VI_1) Entering MASTER STATE")
	w, err := h2.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	x, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: unicast(h2, h1, "")}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering BACKUP STATE")
	time.Sleep(time.Second) // six Master_Down_Intervals at 50 ms
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ttl64 := 0
	for _, f := range frames {
		// Ethernet, then the IPv4 header: TTL at byte 8, source at 12.
		if len(f.Data) > 34 && f.Data[14+8] == 64 && [4]byte(f.Data[26:30]) == h1.IPv4.Addr().As4() {
			ttl64++
		}
	}
	if ttl64 == 0 {
		t.Fatalf("no advert from keepalived with TTL 64 among %d frames: the test proves nothing", len(frames))
	}
	if strings.Contains(x.Output(), "Entering MASTER STATE") || hasVIP(t, h2, vip4) {
		t.Errorf("xvrrp took over from a master whose %d adverts it received with TTL 64:\n%s", ttl64, x.Output())
	}
}
