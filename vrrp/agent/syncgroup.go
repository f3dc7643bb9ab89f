package agent

import (
	"fmt"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// follow moves the rest of an instance's sync group to the state it entered,
// as keepalived's groups move, and notifies the group once all its members
// are there. A member forced along does not force the others again.
func (a *Agent) follow(in *instance, to vrrp.State, now time.Duration) {
	if a.forcing || in.cfg.SyncGroup == "" {
		return
	}
	a.forcing = true
	defer func() { a.forcing = false }()
	g := in.cfg.SyncGroup
	for _, o := range a.groups[g] {
		if o != in {
			a.apply(o, o.m.Force(now, to, "sync group "+g))
		}
	}
	// The group's own notification, once all its members are there.
	for _, o := range a.groups[g] {
		if o.m.State() != to {
			return
		}
	}
	if a.groupState[g] != to {
		a.groupState[g] = to
		a.log.Info(fmt.Sprintf("(%s) Sync group entering %s STATE", g, stateName(to)))
		a.notify.group(in.cfg.Group, stateName(to))
	}
}
