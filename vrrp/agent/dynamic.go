package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

// dynamic_interfaces: an instance whose interface does not exist yet waits
// for it, as keepalived's does, instead of failing the start. Until then it is
// not run; status shows it in FAULT, as keepalived does, and its sync group is
// held in FAULT.

// waitForInterface puts an instance whose interface is missing on the
// pending list, when dynamic_interfaces allows it, and says so.
func (a *Agent) waitForInterface(in *config.Instance) bool {
	if !a.cfg.Global.DynamicInterfaces {
		return false
	}
	if _, err := a.nl.LinkByName(in.Interface); !errors.As(err, new(netlink.LinkNotFoundError)) {
		return false
	}
	a.log.Warn(fmt.Sprintf("(%s) interface %s does not exist: waiting for it (dynamic_interfaces)", in.Name, in.Interface))
	a.pending = append(a.pending, in)
	return true
}

// makePending makes and starts the pending instances whose interface now
// exists. One that cannot be made yet (its interface has no address to send
// from yet) is tried again a second later.
func (a *Agent) makePending(now time.Duration) {
	var still []*config.Instance
	a.pendingAt = 0
	started := false
	for _, nc := range a.pending {
		if _, err := a.nl.LinkByName(nc.Interface); err != nil {
			still = append(still, nc)
			continue
		}
		in, err := a.newInstance(nc)
		if err == nil {
			err = a.dp.Attach(in.ifi.Index)
		}
		if err != nil {
			a.log.Warn(fmt.Sprintf("(%s) interface %s exists, not usable yet: %v", nc.Name, nc.Interface, err))
			still = append(still, nc)
			a.pendingAt = now + time.Second
			continue
		}
		for _, v := range in.held() {
			if err := a.addrs.prepare(v); err != nil {
				a.log.Warn(fmt.Sprintf("(%s) %v", nc.Name, err))
			}
		}
		a.insts = append(a.insts, in)
		a.index(in)
		a.log.Info(fmt.Sprintf("(%s) interface %s appeared: starting the instance", nc.Name, nc.Interface))
		started = true
	}
	a.pending = still
	if !started || !a.running {
		return
	}
	for _, in := range a.insts {
		if in.m.State() != vrrp.Init {
			continue
		}
		if f := a.groupFault(in); f != "" {
			a.apply(in, in.m.SetFault(now, true, f))
		} else {
			a.apply(in, in.m.Start(now))
		}
	}
	a.reassess("interface appeared")
}
