package agent

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// The kernel's LIVENESS_LOST for the master a backup follows makes it take
// over at once, in a takeover's order, long before Master_Down_Interval; one
// for another master (a new one spoke since), or reaching a master, does
// nothing.
func TestLivenessLostTakesOver(t *testing.T) {
	r := newRig(t, oneInstance(100, "fast_liveness {\n        interval 1ms\n    }\n    garp_master_repeat 1"))
	r.start()
	r.flush()
	r.w.take()
	r.hear(51, "192.0.2.13", 150)
	r.w.take()
	key := loader.Key{Ifindex: 2, VRID: 51}
	lost := func(from string) {
		r.clock += 4 * time.Millisecond
		r.event(loader.Heard{Key: key, Heard: vrrp.Heard{Addr: netip.MustParseAddr(from), At: r.clock}, Lost: true})
		r.loop()
	}

	lost("192.0.2.14")
	if ops := r.w.take(); len(ops) != 0 || r.state("VI_1") != vrrp.Backup {
		t.Fatalf("word about another master: %q, state %v; want nothing", ops, r.state("VI_1"))
	}
	lost("192.0.2.13")
	lease := r.clock + vrrp.Lease(3, 100*time.Millisecond, 0)
	want := []string{
		"add 192.0.2.1/24 dev eth0",
		"advert VRID 51 prio 100",
		"kernel VRID 51 MASTER prio 100 lease " + lease.String(),
		"announce 192.0.2.1",
	}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("takeover (-want +got):\n%s", diff)
	}
	if r.state("VI_1") != vrrp.Master {
		t.Fatalf("state %v, want MASTER", r.state("VI_1"))
	}
	lost("192.0.2.13")
	if ops := r.w.take(); len(ops) != 0 || r.state("VI_1") != vrrp.Master {
		t.Errorf("word reaching a master: %q, state %v; want nothing", ops, r.state("VI_1"))
	}
}

// A prober with a long interval stops at once, not at its next probe.
func TestProberStopsPromptly(t *testing.T) {
	p := newProber("VI_1", 10*time.Second, func(loader.Key) (loader.Liveness, error) {
		return loader.Liveness{Master: netip.MustParseAddr("192.0.2.13")}, nil
	}, slog.New(slog.DiscardHandler))
	p.start()
	p.set(&probeTarget{key: loader.Key{Ifindex: 1, VRID: 51}, src: netip.MustParseAddr("192.0.2.12")})
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	p.close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("close took %v with a 10 s interval", d)
	}
}
