package loader

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// sub is what moved from before to after.
func sub(after, before Counters) Counters {
	d := Counters{
		AdvertRcvd: after.AdvertRcvd - before.AdvertRcvd, PriZeroRcvd: after.PriZeroRcvd - before.PriZeroRcvd,
		PacketLenErr: after.PacketLenErr - before.PacketLenErr, IPTTLErr: after.IPTTLErr - before.IPTTLErr,
		InvalidTypeRcvd: after.InvalidTypeRcvd - before.InvalidTypeRcvd, AdvertIntervalErr: after.AdvertIntervalErr - before.AdvertIntervalErr,
		AddrListErr: after.AddrListErr - before.AddrListErr, InvalidAuthtype: after.InvalidAuthtype - before.InvalidAuthtype,
		AuthtypeMismatch: after.AuthtypeMismatch - before.AuthtypeMismatch, AuthFailure: after.AuthFailure - before.AuthFailure,
		FencedIngress: after.FencedIngress - before.FencedIngress, FencedEgress: after.FencedEgress - before.FencedEgress,
		NoAccept: after.NoAccept - before.NoAccept, Dropped: map[vrrp.Reason]uint64{},
	}
	for r, v := range after.Dropped {
		if v != before.Dropped[r] {
			d.Dropped[r] = v - before.Dropped[r]
		}
	}
	return d
}

func dropped(r vrrp.Reason) map[vrrp.Reason]uint64 { return map[vrrp.Reason]uint64{r: 1} }

// TestInstanceCounters: XDP counts each advert for the instance it names,
// under keepalived's name where keepalived counts it, and by reason; adverts
// for a VRID no instance runs make no counters.
func TestInstanceCounters(t *testing.T) {
	d := newDatapath(t)
	configure(t, d)
	k51, k52 := Key{Ifindex: loIfindex, VRID: 51}, Key{Ifindex: loIfindex, VRID: 52}
	prio0 := v3()
	prio0.Priority = 0
	longV2 := v2()
	longV2.Interval = 2 * time.Second
	noAuth := v2()
	noAuth.AuthType, noAuth.AuthData = vrrp.AuthNone, [8]byte{}
	wrongKey := v2()
	wrongKey.AuthData = vrrp.Password("guess")
	foreign := v3()
	foreign.VRID = 99
	valid3 := advert(t, v3(), src4, vrrp.Group4, 255)
	own := v3()
	own.VRID = 55

	for _, c := range []struct {
		name  string
		frame []byte
		key   Key
		want  Counters
	}{
		{"valid", valid3, k52, Counters{AdvertRcvd: 1}},
		{"priority 0", advert(t, prio0, src4, vrrp.Group4, 255), k52, Counters{AdvertRcvd: 1, PriZeroRcvd: 1}},
		{"TTL 254", advert(t, v3(), src4, vrrp.Group4, 254), k52, Counters{IPTTLErr: 1, Dropped: dropped(vrrp.ReasonTTL)}},
		{"type 2", mutate(valid3, func(m []byte) { m[0] = 0x32 }, false), k52,
			Counters{InvalidTypeRcvd: 1, Dropped: dropped(vrrp.ReasonType)}},
		{"bad checksum", mutate(valid3, func(m []byte) { m[6] ^= 0xff }, true), k52, Counters{Dropped: dropped(vrrp.ReasonChecksum)}},
		{"address count", mutate(valid3, func(m []byte) { m[3] = 2 }, false), k52,
			Counters{AddrListErr: 1, Dropped: dropped(vrrp.ReasonAddrCount)}},
		{"v2 interval", advert(t, longV2, src4, vrrp.Group4, 255), k51,
			Counters{AdvertIntervalErr: 1, Dropped: dropped(vrrp.ReasonInterval)}},
		{"unknown auth type", mutate(advert(t, v2(), src4, vrrp.Group4, 255), func(m []byte) { m[4] = 2 }, false), k51,
			Counters{InvalidAuthtype: 1, Dropped: dropped(vrrp.ReasonAuthType)}},
		{"auth type mismatch", advert(t, noAuth, src4, vrrp.Group4, 255), k51,
			Counters{AuthtypeMismatch: 1, Dropped: dropped(vrrp.ReasonAuthType)}},
		{"wrong password", advert(t, wrongKey, src4, vrrp.Group4, 255), k51,
			Counters{AuthFailure: 1, Dropped: dropped(vrrp.ReasonAuthKey)}},
		{"own source", advert(t, own, self, group4, 255), Key{Ifindex: loIfindex, VRID: 55}, Counters{Dropped: dropped(vrrp.ReasonOwnSource)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := d.InstanceCounters(c.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.XDP().Run(&ebpf.RunOptions{Data: c.frame}); err != nil {
				t.Fatal(err)
			}
			after, err := d.InstanceCounters(c.key)
			if err != nil {
				t.Fatal(err)
			}
			if c.want.Dropped == nil {
				c.want.Dropped = map[vrrp.Reason]uint64{}
			}
			if diff := cmp.Diff(c.want, sub(after, before)); diff != "" {
				t.Errorf("counters moved (-want +got):\n%s", diff)
			}
		})
	}

	total, err := d.TotalCounters()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.XDP().Run(&ebpf.RunOptions{Data: advert(t, foreign, src4, vrrp.Group4, 255)}); err != nil {
		t.Fatal(err)
	}
	after, err := d.TotalCounters()
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Adverts[vrrp.ReasonForeign] - total.Adverts[vrrp.ReasonForeign]; n != 1 {
		t.Errorf("foreign advert counted %d times in total, want 1", n)
	}
	if n, err := d.ForeignAdverts(loIfindex, false); err != nil || n != 1 {
		t.Errorf("foreign adverts on the interface: %d, %v; want 1", n, err)
	}
	if n, err := d.ForeignAdverts(loIfindex, true); err != nil || n != 0 {
		t.Errorf("foreign IPv6 adverts on the interface: %d, %v; want 0", n, err)
	}
	if err := d.objs.InstanceStats.Lookup(Key{Ifindex: loIfindex, VRID: 99}.kernel(), new([]bpfXvrrpInstanceStats)); err == nil {
		t.Errorf("an advert for VRID 99, which no instance runs, made counters for it")
	}
}

// TestInstanceCountersFence: the fence counts what it drops for the instance
// that owns the VIP, by direction, and no_accept apart.
func TestInstanceCountersFence(t *testing.T) {
	d := newDatapath(t)
	owner := Key{Ifindex: loIfindex, VRID: 51}
	if err := d.PutVIPOf(owner, vip4); err != nil {
		t.Fatal(err)
	}
	orphan := Key{Ifindex: loIfindex, VRID: 60}
	vip := netip.MustParseAddr("192.0.2.60")
	if err := d.PutVIPOf(orphan, vip); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("192.0.2.200")
	run := func(prog *ebpf.Program, frame []byte) {
		t.Helper()
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetInstance(owner, Spec{Version: 3}, InstanceState{State: vrrp.Backup}); err != nil {
		t.Fatal(err)
	}
	run(d.FenceIngress(), udpFrame(client, vip4))
	run(d.FenceIngress(), udpFrame(client, vip4))
	run(d.FenceEgress(), udpFrame(vip4, client))
	run(d.FenceEgress(), arpFrame(vip4, 2))
	run(d.FenceEgress(), arpFrame(vip4, 2))
	run(d.FenceEgress(), arpFrame(vip4, 2))
	// A master in no_accept mode: only what is delivered to the VIP.
	lease := time.Duration(monotonicNow(t)) + time.Hour
	if err := d.SetInstance(owner, Spec{Version: 3, NoAccept: true}, InstanceState{State: vrrp.Master, LeaseUntil: lease}); err != nil {
		t.Fatal(err)
	}
	run(d.FenceIngress(), udpFrame(client, vip4))
	run(d.FenceEgress(), udpFrame(vip4, client))
	// The owner of this VIP is not in the instances map.
	run(d.FenceIngress(), udpFrame(client, vip))

	got, err := d.InstanceCounters(owner)
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{FencedIngress: 2, FencedEgress: 4, NoAccept: 1, Dropped: map[vrrp.Reason]uint64{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owner's counters (-want +got):\n%s", diff)
	}
	if err := d.objs.InstanceStats.Lookup(orphan.kernel(), new([]bpfXvrrpInstanceStats)); err == nil {
		t.Errorf("a VIP whose owner is no instance made counters for it")
	}

	// Forget resets them with the instance.
	if err := d.Forget(owner, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := d.InstanceCounters(owner); err != nil || got.FencedIngress != 0 {
		t.Errorf("counters after Forget: %+v, %v; want zero", got, err)
	}
}

// An observer of a daemon whose build has no instance_stats (an older one)
// reads zero counters and pins nothing into the daemon's directory.
func TestObserveOlderPins(t *testing.T) {
	labtest.Require(t)
	dir := testPinDir(t)
	d, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if err := os.Remove(filepath.Join(dir, "instance_stats")); err != nil {
		t.Fatal(err)
	}
	o, err := Load(Options{PinDir: dir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if c, err := o.InstanceCounters(Key{Ifindex: 1, VRID: 51}); err != nil || c.FencedIngress != 0 {
		t.Errorf("counters: %+v, %v", c, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "instance_stats")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the observer pinned instance_stats in the daemon's directory: %v", err)
	}
}
