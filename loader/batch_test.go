package loader

import (
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// TestSetInstancesWritesEach: the batch write of leases leaves each instance
// as SetInstance would.
func TestSetInstancesWritesEach(t *testing.T) {
	d := newDatapath(t)
	var ks []Key
	var ss []Spec
	var sts []InstanceState
	for i := range 3 {
		ks = append(ks, Key{Ifindex: loIfindex, VRID: uint8(70 + i)})
		ss = append(ss, Spec{Version: 3, Interval: 10 * time.Millisecond, Local: self})
		sts = append(sts, InstanceState{State: vrrp.Master, Priority: uint8(100 + i),
			LeaseUntil: time.Duration(i+1) * time.Hour, Renewed: time.Duration(i+1) * time.Minute})
	}
	if err := d.SetInstances(ks, ss, sts); err != nil {
		t.Fatal(err)
	}
	for i, k := range ks {
		got, err := d.State(k)
		if err != nil {
			t.Fatal(err)
		}
		if got != sts[i] {
			t.Errorf("%+v: %+v, want %+v", k, got, sts[i])
		}
	}
}
