package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/loader"
	"golang.org/x/sys/unix"
)

// linkState is one link update: an interface's index, name and whether it is
// up, or that it was deleted.
type linkState struct {
	index   int
	name    string
	up      bool
	deleted bool
	// resync comes before the dump of a new subscription: updates may have
	// been lost, a deletion among them.
	resync   bool
	loopback bool
}

// watchLinks sends every link change to out until done is closed. When the
// kernel drops notifications because the socket's buffer filled (ENOBUFS), or
// any other receive fails, the library ends the subscription: it subscribes
// again, and the dump of every link that comes with a subscription brings the
// agent back in step with what it missed. rcvbuf sets the socket's receive
// buffer when not 0.
func watchLinks(done <-chan struct{}, out chan<- linkState, log *slog.Logger, rcvbuf int) error {
	subscribe := func() (chan netlink.LinkUpdate, error) {
		updates := make(chan netlink.LinkUpdate, 64)
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ListExisting:           true,
			ReceiveBufferSize:      rcvbuf,
			ReceiveBufferForceSize: rcvbuf != 0,
			ErrorCallback: func(err error) {
				select {
				case <-done: // the socket was closed to stop
				default:
					log.Warn("link updates", "error", err)
				}
			},
		})
		return updates, err
	}
	updates, err := subscribe()
	if err != nil {
		return fmt.Errorf("subscribe to link updates: %w", err)
	}
	go func() {
		for {
			for u := range updates {
				attrs := u.Attrs()
				select {
				case out <- linkState{index: attrs.Index, name: attrs.Name, up: linkUp(attrs), deleted: u.Header.Type == unix.RTM_DELLINK,
					loopback: attrs.Flags&net.FlagLoopback != 0}:
				case <-done:
					return
				}
			}
			for {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond): // no busy loop if subscribing fails
				}
				if updates, err = subscribe(); err == nil {
					log.Info("link updates resubscribed; resynchronising link states")
					select {
					case out <- linkState{resync: true}:
					case <-done:
						return
					}
					break
				}
				log.Warn("link updates", "error", err)
			}
		}
	}()
	return nil
}

// link applies a link update: an instance's interface going down, up, away,
// or coming back under the same name with a new index; a tracked interface's
// state; a VIP's interface re-created.
func (a *Agent) link(l linkState) {
	if l.resync {
		a.resyncLinks()
		return
	}
	changed := false
	now := a.now()
	for _, in := range a.insts {
		switch {
		case l.deleted && in.hasVMAC(l.index):
			changed = a.vmacGone(in, l, now) || changed
		case in.ifi.Index == l.index && l.deleted:
			if in.up || !in.gone {
				a.log.Info(fmt.Sprintf("(%s) interface %s deleted", in.cfg.Name, l.name))
			}
			in.up, in.gone, changed = false, true, true
		case in.ifi.Index == l.index:
			if in.up != l.up {
				in.up, changed = l.up, true
				a.log.Info(fmt.Sprintf("(%s) interface %s %s", in.cfg.Name, l.name, upDown(l.up)))
				if l.up {
					in.sendFault, in.sendFaultUntil = "", 0 // a new chance to send
				}
			}
		case in.cfg.Interface == l.name && !l.deleted:
			// Deleted and created again (a VLAN or bond rebuilt, a veth
			// re-created by a container runtime): a new index.
			a.rebind(in, now)
			changed = true
		case !l.deleted && in.vipOn(l.name, l.index):
			a.rebindVIPs(in)
		}
	}
	if up, tracked := a.health.ifUp[l.name]; tracked {
		if l.deleted {
			l.up = false
		}
		if up != l.up {
			a.health.ifUp[l.name], changed = l.up, true
			a.log.Info(fmt.Sprintf("tracked interface %s %s", l.name, upDown(l.up)))
		}
	}
	a.fenceLink(l) // after a re-created instance interface got its own datapath
	if !l.deleted && len(a.pending) > 0 {
		a.makePending(now)
	}
	if changed {
		a.reassess("interface " + l.name + " up")
	}
}

// resyncLinks finds the instances' interfaces that were deleted while link
// updates were lost; the dump that follows brings the rest.
func (a *Agent) resyncLinks() {
	for _, in := range a.insts {
		if in.gone {
			continue
		}
		if _, err := a.nl.LinkByIndex(in.ifi.Index); err != nil && errors.As(err, new(netlink.LinkNotFoundError)) {
			a.link(linkState{index: in.ifi.Index, name: in.ifi.Name, deleted: true})
		}
	}
}

// vipOn reports whether a VIP of the instance is on an interface of that name
// under another index: re-created.
func (in *instance) vipOn(name string, index int) bool {
	for _, v := range in.vips {
		if v.link.Attrs().Name == name && v.link.Attrs().Index != index {
			return true
		}
	}
	return false
}

// rebind moves an instance to its interface's new incarnation: the datapath
// is attached to it, the kernel's entries re-keyed by its index, the sockets
// reopened on it. Until that succeeds (the interface may be created before its
// addresses are added), the instance stays in FAULT and rebind is retried.
func (a *Agent) rebind(in *instance, now time.Duration) {
	old := *in
	if err := a.bind(in); err != nil {
		if in.rebindErr == "" || in.rebindErr != err.Error() {
			a.log.Warn(fmt.Sprintf("(%s) interface %s is back, not usable yet: %v", in.cfg.Name, in.cfg.Interface, err))
		}
		in.rebindErr, in.rebindAt, in.up = err.Error(), now+time.Second, false
		return
	}
	in.rebindErr, in.rebindAt, in.gone = "", 0, false
	in.sendFault, in.sendFaultUntil = "", 0
	a.log.Info(fmt.Sprintf("(%s) interface %s re-created (index %d, was %d): re-attaching", in.cfg.Name, in.cfg.Interface, in.ifi.Index, old.ifi.Index))
	if old.key != in.key {
		delete(a.byKey, old.key)
		a.deleteKernelEntries(&old)
		a.byKey[in.key] = in
	}
	in.kstate = loader.InstanceState{State: in.m.State(), Priority: in.m.Priority()}
	in.setKernelAddrs()
	if err := a.putKernelEntries(in); err != nil {
		a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
	}
	// The VMACs went with the old interface; bind made new ones.
	for _, vm := range append([]*vmacIf{old.vmac}, slices.Collect(maps.Values(old.addrVMACs))...) {
		if vm != nil {
			a.addrs.release(vm.link.Attrs().Index)
		}
	}
	if old.ifi.Index != in.ifi.Index {
		a.releaseInterface(old.ifi.Index, old.sender.sock)
		if err := a.dp.Attach(in.ifi.Index); err != nil {
			a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			in.up = false
		}
	}
	for _, v := range in.vips {
		if err := a.addrs.prepare(v); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
	}
}

// rebindVIPs looks the VIPs' interfaces up again by name.
func (a *Agent) rebindVIPs(in *instance) {
	lnk, err := a.nl.LinkByIndex(in.ifi.Index)
	if err != nil {
		return
	}
	for i, v := range in.cfg.VIPs {
		if vv, err := a.vipOf(in.cfg, v, in.vipLink(lnk, v)); err == nil {
			in.vips[i] = vv
		}
	}
}

// releaseInterface lets go of what the agent held on an interface index that
// no instance uses any more: its socket, its announcer and the datapath's
// pins for it (the kernel detached the programs with the interface).
func (a *Agent) releaseInterface(index int, sock *rawSocket) {
	for _, in := range a.insts {
		if in.ifi.Index == index {
			return
		}
	}
	for k, s := range a.socks {
		if k.ifindex == index || s == sock {
			s.close()
			delete(a.socks, k)
		}
	}
	a.addrs.release(index)
	if err := a.dp.Detach(index); err != nil && !errors.Is(err, unix.ENODEV) {
		a.log.Warn("detach from a deleted interface", "ifindex", index, "error", err)
	}
}

// fenceOthers attaches the fence to every interface of the namespace that runs
// no instance, loopback aside: Linux answers for a local address on any
// interface, so a VIP's traffic can come in, and its replies go out, through
// any of them, and a node that is not master must answer through none.
func (a *Agent) fenceOthers() error {
	links, err := a.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces to fence: %w", err)
	}
	for _, l := range links {
		attrs := l.Attrs()
		a.fenceLink(linkState{index: attrs.Index, name: attrs.Name, loopback: attrs.Flags&net.FlagLoopback != 0})
	}
	return nil
}

// fenceLink fences an interface that appeared, and lets go of one that went.
func (a *Agent) fenceLink(l linkState) {
	if l.loopback || l.resync {
		return
	}
	for _, in := range a.insts {
		if in.ifi.Index == l.index {
			return // Attach gave it the fence with XDP
		}
	}
	switch {
	case l.deleted && a.fenceOnly[l.index]:
		delete(a.fenceOnly, l.index)
		if err := a.dp.Detach(l.index); err != nil {
			a.log.Warn("detach the fence from a deleted interface", "interface", l.name, "error", err)
		}
	case !l.deleted && !a.fenceOnly[l.index]:
		if err := a.dp.AttachFence(l.index); err != nil {
			if errors.Is(err, unix.ENODEV) {
				return // gone already: its deletion follows
			}
			a.log.Warn("fence interface", "interface", l.name, "error", err)
			return
		}
		a.fenceOnly[l.index] = true
	}
}
