package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/vrrp"
)

// TestAgentCounters: the counters only the agent sees — adverts sent,
// priority-0 adverts, becoming and releasing master, lease renewals — as
// Status reports them.
func TestAgentCounters(t *testing.T) {
	r := newRig(t, oneInstance(100, ""))
	r.start()
	r.loop()
	mdi := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3)
	at := time.Second + mdi
	r.at(at) // master: its first advert
	for i := 1; i <= 4; i++ {
		r.at(at + time.Duration(i)*100*time.Millisecond)
	}
	// Stopping: a priority-0 advert, which renews nothing.
	in := r.insts[0]
	r.apply(in, in.m.Stop(r.clock))
	r.loop()
	st := r.status()
	want := &CounterStatus{AdvertSent: 6, PriZeroSent: 1, BecomeMaster: 1, ReleaseMaster: 1, LeaseRenewals: 5,
		Dropped: map[string]uint64{}}
	if diff := cmp.Diff(want, st.Instances[0].Counters); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if st.Instances[0].LastTransition == nil {
		t.Errorf("no last transition after three")
	}
}
