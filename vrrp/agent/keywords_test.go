package agent

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
)

// announces counts the gratuitous ARPs in ops.
func announces(ops []string) int {
	n := 0
	for _, op := range ops {
		if strings.HasPrefix(op, "announce ") {
			n++
		}
	}
	return n
}

func withGlobal(global, instanceExtra string) string {
	return "global_defs {\n" + global + "\n}\n" + oneInstance(100, instanceExtra)
}

// The gratuitous ARP schedule of a new master, keyword by keyword, as
// keepalived.conf(5) has it: garp_master_repeat at takeover, as many again
// garp_master_delay later, garp_master_refresh_repeat every
// garp_master_refresh; the global vrrp_garp_* set the defaults; vrrp_min_garp
// is one ARP and nothing after it.
func TestGarpKeywords(t *testing.T) {
	// GARPs at takeover, then in the windows ending 1 s, 2 s, 3 s, 5 s, 7 s
	// and 10 s after it.
	after := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second, 7 * time.Second, 10 * time.Second}
	for _, tc := range []struct {
		name, conf string
		want       []int
	}{
		{"defaults", oneInstance(100, ""), []int{5, 0, 0, 0, 5, 0, 0}},
		{"garp_master_repeat and garp_master_delay", oneInstance(100, "garp_master_repeat 2\ngarp_master_delay 1"), []int{2, 2, 0, 0, 0, 0, 0}},
		{"garp_master_delay 0", oneInstance(100, "garp_master_delay 0"), []int{5, 0, 0, 0, 0, 0, 0}},
		{"garp_master_refresh", oneInstance(100, "garp_master_repeat 1\ngarp_master_delay 1\ngarp_master_refresh 2\ngarp_master_refresh_repeat 3"),
			[]int{1, 1, 0, 3, 3, 3, 3}},
		{"global vrrp_garp_master_*", withGlobal("vrrp_garp_master_repeat 2\nvrrp_garp_master_delay 1\nvrrp_garp_master_refresh 2\nvrrp_garp_master_refresh_repeat 3", ""),
			[]int{2, 2, 0, 3, 3, 3, 3}},
		{"instance over global", withGlobal("vrrp_garp_master_repeat 2", "garp_master_repeat 3"), []int{3, 0, 0, 0, 3, 0, 0}},
		{"vrrp_min_garp", withGlobal("vrrp_min_garp", ""), []int{1, 0, 0, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.conf)
			r.start()
			r.at(2 * time.Second)
			if r.state("VI_1") != vrrp.Master {
				t.Fatalf("state %v, want MASTER", r.state("VI_1"))
			}
			got := []int{announces(r.w.take())}
			// The master's adverts move the clock in 100 ms steps, as the
			// event loop would.
			now := 2 * time.Second
			for _, end := range after {
				n := 0
				for ; now < 2*time.Second+end; now += 100 * time.Millisecond {
					r.at(now + 100*time.Millisecond)
					n += announces(r.w.take())
				}
				got = append(got, n)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GARPs at takeover, then by 1, 2, 3, 5, 7, 10 s (-want +got):\n%s", diff)
			}
		})
	}
}

// garp_lower_prio_repeat and garp_lower_prio_delay (and their global
// vrrp_garp_lower_prio_*): a master hearing a master of lower priority sends
// that many GARPs per VIP at once, and as many again after the delay, which
// follows garp_master_delay unless given, as keepalived's; vrrp_min_garp makes
// it one, once.
func TestGarpLowerPrio(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name, conf string
		want       map[time.Duration]int // GARPs by time after hearing it (0: at once), in 100 ms steps
	}{
		{"default", oneInstance(100, ""), map[time.Duration]int{0: 5, 4500 * ms: 5, 5000 * ms: 5}},
		{"garp_lower_prio_repeat", oneInstance(100, "garp_master_delay 0\ngarp_lower_prio_repeat 2"), map[time.Duration]int{0: 2}},
		{"garp_lower_prio_delay", oneInstance(100, "garp_master_delay 0\ngarp_lower_prio_repeat 2\ngarp_lower_prio_delay 2"),
			map[time.Duration]int{0: 2, 2000 * ms: 2}},
		{"follows garp_master_delay", oneInstance(100, "garp_master_delay 3\ngarp_lower_prio_repeat 2"),
			map[time.Duration]int{0: 2, 2500 * ms: 5, 3000 * ms: 2}},
		{"vrrp_garp_lower_prio_*", withGlobal("vrrp_garp_lower_prio_repeat 3\nvrrp_garp_lower_prio_delay 1", "garp_master_delay 0"),
			map[time.Duration]int{0: 3, 1000 * ms: 3}},
		{"vrrp_min_garp", withGlobal("vrrp_min_garp", ""), map[time.Duration]int{0: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.conf)
			r.takeOverAt(2 * time.Second)
			r.w.take()
			heard := 2*time.Second + 500*ms
			r.clock = heard
			r.hear(51, "192.0.2.11", 50)
			got := map[time.Duration]int{}
			if n := announces(r.w.take()); n > 0 {
				got[0] = n
			}
			for d := 100 * ms; d <= 8*time.Second; d += 100 * ms {
				r.at(heard + d)
				if n := announces(r.w.take()); n > 0 {
					got[d] = n
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GARPs by time after hearing priority 50 (-want +got; the takeover's second burst is 5 s after it, 500 ms before hearing):\n%s", diff)
			}
		})
	}
}

// down_timer_adverts (and the global vrrp_down_timer_adverts): a backup takes
// over after that many advert intervals plus the skew, not three.
func TestDownTimerAdverts(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		adverts    int
	}{
		{"default", oneInstance(100, ""), 3},
		{"down_timer_adverts", oneInstance(100, "down_timer_adverts 7"), 7},
		{"vrrp_down_timer_adverts", withGlobal("vrrp_down_timer_adverts 5", ""), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.conf)
			r.start()
			mdi := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, tc.adverts)
			r.at(time.Second + mdi - time.Millisecond)
			if s := r.state("VI_1"); s != vrrp.Backup {
				t.Fatalf("%v before %d adverts' Master_Down_Interval (%v), want BACKUP", s, tc.adverts, mdi)
			}
			r.at(time.Second + mdi)
			if s := r.state("VI_1"); s != vrrp.Master {
				t.Errorf("%v at %d adverts' Master_Down_Interval (%v), want MASTER", s, tc.adverts, mdi)
			}
		})
	}
}

// unicast_fault_no_peer: an instance without unicast peers stays in FAULT
// instead of running multicast, as keepalived's; without it, it runs.
func TestUnicastFaultNoPeer(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  vrrp.State
	}{{"", vrrp.Master}, {"unicast_fault_no_peer", vrrp.Fault}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			r := newRig(t, oneInstance(100, tc.extra))
			r.start()
			r.running = true
			r.at(3 * time.Second)
			if got := r.state("VI_1"); got != tc.want {
				t.Errorf("%q: %v, want %v", tc.extra, got, tc.want)
			}
			if tc.want == vrrp.Fault {
				for _, op := range r.w.take() {
					if strings.HasPrefix(op, "advert") || strings.HasPrefix(op, "add") {
						t.Errorf("in FAULT, yet %q", op)
					}
				}
			}
		})
	}
}

// lower_prio_no_advert: a master hearing a lower priority does not answer with
// an advert (RFC 5798), where by default it does at once, as keepalived; on
// in strict mode. higher_prio_send_advert: a master beaten by a higher
// priority sends one advert of its own before it steps down.
func TestAdvertKeywords(t *testing.T) {
	hasAdvert := func(ops []string) bool {
		for _, op := range ops {
			if op == "advert VRID 51 prio 100" {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name, conf string
		from       uint8 // the other master's priority
		advert     bool
		after      vrrp.State
	}{
		{"lower, default", oneInstance(100, ""), 50, true, vrrp.Master},
		{"lower, lower_prio_no_advert", oneInstance(100, "lower_prio_no_advert"), 50, false, vrrp.Master},
		{"lower, vrrp_lower_prio_no_advert", withGlobal("vrrp_lower_prio_no_advert", ""), 50, false, vrrp.Master},
		{"lower, strict_mode", oneInstance(100, "strict_mode"), 50, false, vrrp.Master},
		{"lower, strict_mode, lower_prio_no_advert off", oneInstance(100, "strict_mode\nlower_prio_no_advert false"), 50, true, vrrp.Master},
		{"higher, default", oneInstance(100, ""), 200, false, vrrp.Backup},
		{"higher, higher_prio_send_advert", oneInstance(100, "higher_prio_send_advert"), 200, true, vrrp.Backup},
		{"higher, vrrp_higher_prio_send_advert", withGlobal("vrrp_higher_prio_send_advert", ""), 200, true, vrrp.Backup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.conf)
			r.start()
			r.at(2 * time.Second)
			if r.state("VI_1") != vrrp.Master {
				t.Fatalf("state %v, want MASTER", r.state("VI_1"))
			}
			r.w.take()
			r.clock += 10 * time.Millisecond // between our own adverts
			r.hear(51, "192.0.2.11", tc.from)
			ops := r.w.take()
			if got := hasAdvert(ops); got != tc.advert {
				t.Errorf("advert on hearing priority %d: %v, want %v (%q)", tc.from, got, tc.advert, ops)
			}
			if got := r.state("VI_1"); got != tc.after {
				t.Errorf("state %v, want %v", got, tc.after)
			}
		})
	}
}

// vrrp_garp_interval spaces an IPv4 instance's gratuitous ARPs, a round per
// interval, at takeover and on hearing a lower priority; vrrp_gna_interval is
// IPv6's and leaves an IPv4 instance's back to back.
func TestGarpInterval(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name, global string
		top          string // garp_group blocks
		takeover     []int  // GARPs at takeover, then +30, +60, +90, +120 ms
		lower        []int  // the same on hearing a lower priority
	}{
		{"vrrp_garp_interval", "vrrp_garp_interval 0.03", "", []int{1, 1, 1, 0, 0}, []int{1, 1, 0, 0, 0}},
		{"vrrp_gna_interval", "vrrp_gna_interval 0.03", "", []int{3, 0, 0, 0, 0}, []int{2, 0, 0, 0, 0}},
		// garp_group: the interface's own spacing, instead of the global.
		{"garp_group on eth0", "", "garp_group {\ngarp_interval 0.03\ninterface eth0\n}", []int{1, 1, 1, 0, 0}, []int{1, 1, 0, 0, 0}},
		{"garp_group over the global", "vrrp_garp_interval 0.03", "garp_group {\ngarp_interval 0.06\ngna_interval 0.01\ninterface eth0\n}",
			[]int{1, 0, 1, 0, 1}, []int{1, 0, 1, 0, 0}},
		{"garp_group without garp_interval", "vrrp_garp_interval 0.03", "garp_group {\ngna_interval 0.03\ninterface eth0\n}",
			[]int{3, 0, 0, 0, 0}, []int{2, 0, 0, 0, 0}},
		{"garp_group on another interface", "", "garp_group {\ngarp_interval 0.03\ninterface eth9\n}", []int{3, 0, 0, 0, 0}, []int{2, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Adverts every second, so that no advert moves the clock
			// in between.
			r := newRig(t, tc.top+"\nglobal_defs {\n"+tc.global+"\n}\n"+strings.Replace(
				oneInstance(100, "garp_master_repeat 3\ngarp_master_delay 0\ngarp_lower_prio_repeat 2"), "advert_int 0.1", "advert_int 1", 1))
			r.takeOverAt(5 * time.Second)
			if r.state("VI_1") != vrrp.Master {
				t.Fatalf("state %v, want MASTER", r.state("VI_1"))
			}
			run := func(start time.Duration) []int {
				got := []int{announces(r.w.take())}
				for _, d := range []time.Duration{30 * ms, 60 * ms, 90 * ms, 120 * ms} {
					r.at(start + d)
					got = append(got, announces(r.w.take()))
				}
				return got
			}
			if diff := cmp.Diff(tc.takeover, run(5*time.Second)); diff != "" {
				t.Errorf("GARPs from takeover (-want +got):\n%s", diff)
			}
			r.clock = 5*time.Second + 300*ms
			r.hear(51, "192.0.2.11", 50)
			if diff := cmp.Diff(tc.lower, run(r.clock)); diff != "" {
				t.Errorf("GARPs from hearing a lower priority (-want +got):\n%s", diff)
			}
		})
	}
}

// garp_extra_if N (and the global vrrp_garp_extra_if): while master, a
// gratuitous ARP every N for each address on an interface other than the
// instance's; with all, for every address.
func TestGarpExtraIf(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       map[string][]time.Duration // address → when announced after the takeover's burst
	}{
		{"garp_extra_if 2", oneInstance(100, "garp_master_delay 0\ngarp_extra_if 2"),
			map[string][]time.Duration{"198.51.100.1": {4 * time.Second, 6 * time.Second, 8 * time.Second}}},
		{"garp_extra_if all 2", oneInstance(100, "garp_master_delay 0\ngarp_extra_if all 2"),
			map[string][]time.Duration{"198.51.100.1": {4 * time.Second, 6 * time.Second, 8 * time.Second},
				"192.0.2.1": {4 * time.Second, 6 * time.Second, 8 * time.Second}}},
		{"vrrp_garp_extra_if 3", withGlobal("vrrp_garp_extra_if 3", "garp_master_delay 0"),
			map[string][]time.Duration{"198.51.100.1": {5 * time.Second, 8 * time.Second}}},
		{"none", oneInstance(100, "garp_master_delay 0"), map[string][]time.Duration{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.conf)
			// An excluded address on eth1, as bindExcluded would make it.
			in := r.insts[0]
			in.excluded = append(in.excluded, vip{
				link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1", Index: 3}},
				addr: &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 51, 100, 1).To4(), Mask: net.CIDRMask(24, 32)}},
			})
			r.takeOverAt(2 * time.Second)
			if r.state("VI_1") != vrrp.Master {
				t.Fatalf("state %v, want MASTER", r.state("VI_1"))
			}
			r.w.take()
			got := map[string][]time.Duration{}
			for now := 2*time.Second + 100*time.Millisecond; now <= 8*time.Second; now += 100 * time.Millisecond {
				r.at(now)
				for _, op := range r.w.take() {
					if a, ok := strings.CutPrefix(op, "announce "); ok {
						got[a] = append(got[a], now)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("announced after the takeover (-want +got):\n%s", diff)
			}
		})
	}
}
