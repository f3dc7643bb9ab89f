package agent

import (
	"fmt"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// Make before break. A master that leaves MASTER by its own decision — it
// stops, or its sync group steps down — keeps its VIPs and the lease it has
// until its successor announces itself: the kernel marks the instance as
// handing over, and the first valid advert from another router ends the lease
// there and then (let_go in bpf/xvrrp.c), so the two overlap for the advert's
// flight, not for the daemon's reaction, and clients are never without an
// answer. The lease bounds the wait when no successor comes. Only then do the
// VIPs go. A master beaten by a higher priority needs none of this: the advert
// that beat it is its successor's, and the kernel let go on it already.

// handOver starts a hand-over for an instance leaving MASTER, if the kernel
// still holds its lease; it returns false when there is nothing to wait for
// (the kernel let go already, or the lease ran out) and the caller fences.
func (a *Agent) handOver(in *instance, now time.Duration) bool {
	st, err := a.dp.State(in.key)
	if err != nil || st.State != vrrp.Master || st.LeaseUntil <= now {
		return false
	}
	in.handoverUntil = st.LeaseUntil
	a.putKernel(in, in.m.State(), now)
	return true
}

// handingOver is what the kernel holds of an instance handing over: MASTER
// with the lease it had, not renewed.
func handingOver(in *instance) loader.InstanceState {
	return loader.InstanceState{State: vrrp.Master, Priority: in.m.Priority(), LeaseUntil: in.handoverUntil,
		Renewed: in.kstate.Renewed, HandingOver: true}
}

// handedOver ends a hand-over once the kernel let go, or the lease ran out:
// the instance is fenced in the state its machine is in, then its VIPs,
// excluded addresses, routes and rules go.
func (a *Agent) handedOver(in *instance, now time.Duration) {
	if in.handoverUntil == 0 {
		return
	}
	if now < in.handoverUntil {
		if st, err := a.dp.State(in.key); err == nil && st.State == vrrp.Master {
			return
		}
	}
	in.handoverUntil = 0
	a.putKernel(in, in.m.State(), now)
	if in.m.State() == vrrp.Master {
		return
	}
	a.delRoutes(in)
	for _, v := range in.held() {
		if err := a.addrs.del(v); err != nil {
			a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
	}
}

// awaitHandovers waits, at most until the last lease ends, for the successors
// of the masters that stopped, and ends their hand-overs.
func (a *Agent) awaitHandovers() {
	for {
		now := a.now()
		var until time.Duration
		for _, in := range a.insts {
			a.handedOver(in, now)
			until = max(until, in.handoverUntil)
		}
		if until == 0 {
			return
		}
		// No WATCHDOG=1 here: STOPPING=1, sent before, ends systemd's
		// watchdog for the service, and STOPPING=1 stays the last word.
		time.Sleep(min(time.Millisecond, until-now))
	}
}
