package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// higher_prio_send_advert: a master beaten by a higher priority sends one more
// advert of its own as it steps down; without it, it falls silent at once.
func TestHigherPrioSendAdvert(t *testing.T) {
	for _, on := range []bool{false, true} {
		name := "off"
		extra := ""
		if on {
			name, extra = "on", "higher_prio_send_advert"
		}
		t.Run(name, func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			// Adverts a second apart: h1's next regular one is far from
			// the moment h2 beats it.
			x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, interval: "1", extra: extra}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			w, err := h2.Capture("ip proto 112")
			if err != nil {
				t.Fatal(err)
			}
			x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 200, interval: "1"}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			waitLog(t, x1, "(VI_1) Entering BACKUP STATE")
			time.Sleep(200 * time.Millisecond)
			frames, err := w.Stop()
			if err != nil {
				t.Fatal(err)
			}
			// h1's adverts after h2's first.
			var h2First bool
			after := 0
			for _, f := range frames {
				pkt, err := vrrp.DecodeFrame(f.Data)
				if err != nil {
					continue
				}
				switch {
				case pkt.Src == h2.IPv4.Addr():
					h2First = true
				case pkt.Src == h1.IPv4.Addr() && h2First && pkt.Advert.Priority == 100:
					after++
				}
			}
			if !h2First {
				t.Fatalf("no advert from h2 among %d frames", len(frames))
			}
			want := 0
			if on {
				want = 1
			}
			if after != want {
				t.Errorf("h1 sent %d adverts after h2's first, want %d", after, want)
			}
			x2.Signal(syscall.SIGTERM)
			<-x2.Done()
		})
	}
}

// unicast_fault_no_peer: with no unicast peer the instance stays in FAULT,
// sends nothing and holds no VIP; without it, it runs multicast.
func TestUnicastFaultNoPeerRun(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	w, err := h.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: "unicast_fault_no_peer"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering FAULT STATE")
	time.Sleep(500 * time.Millisecond) // ten advert intervals
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 0 || hasVIP(t, h, vip4) || strings.Contains(x.Output(), "Entering MASTER STATE") {
		t.Errorf("in FAULT: %d adverts on the wire, VIP %v:\n%s", len(frames), hasVIP(t, h, vip4), x.Output())
	}
}
