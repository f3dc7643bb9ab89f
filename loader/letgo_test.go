package loader

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

// TestMasterLetsGoInTheKernel: a valid advert from another router ends a
// master's lease in the kernel — its state BACKUP, the fence closed on its VIP
// at once — when the master is handing over, when the advert beats ours, or
// when our daemon has not renewed the lease for more than an interval. A live
// master hearing a lower priority, a resignation, and a backup keep theirs.
func TestMasterLetsGoInTheKernel(t *testing.T) {
	d := newDatapath(t)
	k := key(52, FamilyIPv4) // v3, IPv4; adverts from src4 (192.0.2.12)
	if err := d.PutVIP(VIPKey{Family: FamilyIPv4, Addr: addr16(vip4)}, k); err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	low, high := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.13")
	for _, tc := range []struct {
		name     string
		state    uint8
		flags    uint32
		local    netip.Addr    // ours, for ties
		renewed  time.Duration // how long ago the daemon renewed the lease
		prio     uint8         // the advert's; ours is 150
		letsGo   bool
		wantPass bool // the VIP's traffic passes the fence after the advert
	}{
		{"live master, lower priority", StateMaster, 0, low, 0, 100, false, true},
		{"live master, resignation", StateMaster, 0, low, 0, 0, false, true},
		{"live master, higher priority", StateMaster, 0, low, 0, 200, true, false},
		{"live master, same priority from a higher address", StateMaster, 0, low, 0, 150, true, false},
		{"live master, same priority from a lower address", StateMaster, 0, high, 0, 150, false, true},
		{"handing over, lower priority", StateMaster, FlagHandingOver, low, 0, 100, true, false},
		{"handing over, resignation", StateMaster, FlagHandingOver, low, 0, 0, false, true},
		{"stalled master, lower priority", StateMaster, 0, low, 2 * interval, 100, true, false},
		{"late but within an interval", StateMaster, 0, low, interval / 2, 100, false, true},
		{"backup", StateBackup, FlagHandingOver, low, 2 * interval, 200, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := monotonicNow(t)
			lease := now + uint64(3*interval)
			in := Instance{Version: 3, State: tc.state, Priority: 150, MinIntervalCs: 1, MaxIntervalCs: 4095,
				IntervalCs: uint16(interval / vrrp.IntervalUnitV3), Flags: FlagRecordInXDP | tc.flags,
				LeaseUntilNs: lease, RenewedNs: now - uint64(tc.renewed)}
			in.SetLocal(tc.local)
			if err := d.PutInstance(k, in); err != nil {
				t.Fatal(err)
			}
			a := v3()
			a.Priority = tc.prio
			if ret, err := d.XDP().Run(&ebpf.RunOptions{Data: advert(t, a, src4, vrrp.Group4, 255)}); err != nil || ret != xdpPass {
				t.Fatalf("run: %d, %v", ret, err)
			}
			got, err := d.Instance(k)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.letsGo && (got.State != StateBackup || got.LeaseUntilNs != 0):
				t.Errorf("state %d, lease until %d: want BACKUP and no lease", got.State, got.LeaseUntilNs)
			case !tc.letsGo && (got.State != tc.state || got.LeaseUntilNs != lease):
				t.Errorf("state %d, lease until %d: want %d and the lease untouched", got.State, got.LeaseUntilNs, tc.state)
			}
			ret, err := d.FenceIngress().Run(&ebpf.RunOptions{Data: udpFrame(netip.MustParseAddr("192.0.2.200"), vip4)})
			if err != nil {
				t.Fatal(err)
			}
			if pass := ret == tcNext; pass != tc.wantPass {
				t.Errorf("after the advert the VIP's traffic passes: %v, want %v", pass, tc.wantPass)
			}
		})
	}
}
