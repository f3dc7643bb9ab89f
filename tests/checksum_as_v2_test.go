package tests

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// v3_checksum_as_v2 (keepalived ≥ 2.2.8; FRR's no checksum-with-ipv4-
// pseudoheader): VRRPv3 IPv4 adverts carry the checksum of the message alone,
// and a router so configured takes only that form, as keepalived does.
//   - two xvrrp nodes with it: the master's adverts carry the message-only
//     checksum on the wire, and the backup follows them;
//   - one with it and one without: each drops the other's adverts, counted as
//     checksum, so both are master (keepalived does the same either way round);
//   - keepalived 2.2.7 (which has no such keyword, so computes the pseudo-
//     header form) beside an xvrrp with it: keepalived logs "Invalid VRRPv3
//     checksum" for our adverts and xvrrp counts keepalived's as checksum.
func TestChecksumAsV2(t *testing.T) {
	asV2 := "    v3_checksum_as_v2"
	t.Run("both", func(t *testing.T) {
		l := labtest.New(t, lab.Options{Hosts: 2})
		h1, h2 := l.Hosts[0], l.Hosts[1]
		x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: asV2}))
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, x1, "(VI_1) Entering MASTER STATE")
		w, err := h2.Capture("ip proto 112")
		if err != nil {
			t.Fatal(err)
		}
		x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: asV2}))
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
		time.Sleep(time.Second) // twenty adverts at 50 ms
		frames, err := w.Stop()
		if err != nil {
			t.Fatal(err)
		}
		messageOnly := 0
		for _, f := range frames {
			p, err := vrrp.DecodeFrame(f.Data)
			if err != nil && !errors.Is(err, vrrp.ErrChecksum) {
				t.Fatalf("frame %x: %v", f.Data, err)
			}
			if err == nil {
				t.Errorf("advert from %v verifies with the pseudo-header: %x", p.Src, f.Data)
				continue
			}
			if _, err := vrrp.DecodePacketForm(f.Data[14:], vrrp.ChecksumMessageOnly); err != nil {
				t.Errorf("advert does not verify over the message alone either: %v", err)
				continue
			}
			messageOnly++
		}
		if messageOnly < 10 {
			t.Fatalf("%d message-only adverts captured in a second: the test proves nothing", messageOnly)
		}
		if strings.Contains(x2.Output(), "Entering MASTER STATE") || hasVIP(t, h2, vip4) {
			t.Errorf("the backup took over from a master it hears:\n%s", x2.Output())
		}
		if c := counters(t, x2.PinDir); c[vrrp.ReasonChecksum] != 0 || c[vrrp.ReasonValid] == 0 {
			t.Errorf("backup's counters: checksum %d, valid %d; want 0 and some", c[vrrp.ReasonChecksum], c[vrrp.ReasonValid])
		}
	})
	t.Run("one of two", func(t *testing.T) {
		l := labtest.New(t, lab.Options{Hosts: 2})
		h1, h2 := l.Hosts[0], l.Hosts[1]
		x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: asV2}))
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, x1, "(VI_1) Entering MASTER STATE")
		x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100}))
		if err != nil {
			t.Fatal(err)
		}
		// Deaf to h1, h2 takes over after its Master_Down_Interval; h1,
		// deaf to h2, stays master.
		waitLog(t, x2, "(VI_1) Entering MASTER STATE")
		time.Sleep(500 * time.Millisecond)
		if steppedDown(x1.Output()) {
			t.Errorf("h1 heard h2's pseudo-header adverts:\n%s", x1.Output())
		}
		for _, x := range []*lab.Xvrrp{x1, x2} {
			if c := counters(t, x.PinDir); c[vrrp.ReasonChecksum] < 5 || c[vrrp.ReasonValid] != 0 {
				t.Errorf("%s: counters checksum %d, valid %d; want the other's adverts dropped as checksum",
					x.PinDir, c[vrrp.ReasonChecksum], c[vrrp.ReasonValid])
			}
		}
	})
	t.Run("keepalived 2.2.7 beside", func(t *testing.T) {
		labtest.Require(t, "keepalived")
		l := labtest.New(t, lab.Options{Hosts: 2})
		h1, h2 := l.Hosts[0], l.Hosts[1]
		k, err := h1.StartKeepalived(nodeConfig(node{prio: 150}))
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, k, "(VI_1) Entering MASTER STATE")
		x, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: asV2}))
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, x, "(VI_1) Entering MASTER STATE")
		waitLog(t, k, "(VI_1) Invalid VRRPv3 checksum")
		if c := counters(t, x.PinDir); c[vrrp.ReasonChecksum] == 0 || c[vrrp.ReasonValid] != 0 {
			t.Errorf("xvrrp counters: checksum %d, valid %d; want keepalived's adverts dropped as checksum",
				c[vrrp.ReasonChecksum], c[vrrp.ReasonValid])
		}
		if steppedDown(k.Output()) {
			t.Errorf("keepalived took xvrrp's message-only adverts:\n%s", k.Output())
		}
	})
}

// steppedDown says whether a daemon's log shows it entering BACKUP other than
// at start.
func steppedDown(log string) bool {
	return strings.Count(log, "Entering BACKUP STATE") > strings.Count(log, "Entering BACKUP STATE (init)")
}
