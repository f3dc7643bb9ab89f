package agent

import (
	"context"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// The agent's rules — transitions, leases, sync groups, FAULT, preemption —
// act on the world through two seams, at the level of what they mean: the
// kernel (put an instance and its lease, read the last advert) and the host's
// addresses (add, remove and announce a VIP). Adverts leave through rawSocket,
// whose batch writer is a seam of its own. Unit tests give fakes for all
// three; the daemon gives *loader.Datapath, hostAddrs and raw sockets.

// kernel is the datapath as the agent uses it.
type kernel interface {
	SetInstance(loader.Key, loader.Spec, loader.InstanceState) error
	SetInstances([]loader.Key, []loader.Spec, []loader.InstanceState) error
	State(loader.Key) (loader.InstanceState, error)
	LastAdvert(loader.Key) (vrrp.Heard, error)
	SetDownTimer(loader.Key, loader.DownTimer) error
	ForgetDownTimer(loader.Key) error
	DownTimerOf(loader.Key) (loader.DownTimerState, error)
	Forget(loader.Key, []netip.Addr) error
	PutVIPOf(loader.Key, netip.Addr) error
	ForgetVIP(netip.Addr) error
	AllowPeer(loader.Key, netip.Addr, vrrp.TTLRange) error
	CheckAdvertAddrs(k loader.Key, old, addrs []netip.Addr, skipSameMaster bool) error
	ForgetAdvertAddrs(loader.Key, []netip.Addr) error
	PutVMAC(ifindex int, parent net.HardwareAddr) error
	ForgetVMAC(ifindex int) error
	SetLiveness(loader.Key, loader.LivenessSpec) error
	LivenessOf(loader.Key) (loader.Liveness, error)
	ReadHeard(context.Context, func(loader.Heard)) error
	Attach(ifindex int) error
	AttachFence(ifindex int) error
	Detach(ifindex int) error
	Close() error
	Remove() error
}

// addresses adds, removes and finds VIPs on the host, and announces them
// (gratuitous ARP, unsolicited NA).
type addresses interface {
	add(v vip) error
	del(v vip) error
	present(v vip) bool
	// prepare opens what announcing v needs ahead of a takeover, which must
	// not pay for it.
	prepare(v vip) error
	announce(v vip) error
	// release closes what was opened for an interface that is gone.
	release(ifindex int)
	close()
}

// hostAddrs is addresses on the host: netlink for the VIPs, an announcer per
// interface for ARP and NDP.
type hostAddrs struct {
	nl   *netlink.Handle // kept open: a socket per request costs a takeover ~50 µs
	anns map[int]*announcer
}

func (h *hostAddrs) add(v vip) error     { return v.add(h.nl) }
func (h *hostAddrs) del(v vip) error     { return v.del(h.nl) }
func (h *hostAddrs) present(v vip) bool  { return v.present(h.nl) }
func (h *hostAddrs) prepare(v vip) error { return h.announcer(v.link).open(v.ip()) }
func (h *hostAddrs) announce(v vip) error {
	return h.announcer(v.link).announce(v.ip())
}

func (h *hostAddrs) announcer(l netlink.Link) *announcer {
	idx := l.Attrs().Index
	an := h.anns[idx]
	if an == nil {
		ifi, err := net.InterfaceByIndex(idx)
		if err != nil {
			ifi = &net.Interface{Index: idx, Name: l.Attrs().Name, HardwareAddr: l.Attrs().HardwareAddr}
		}
		an = &announcer{ifi: ifi}
		h.anns[idx] = an
	}
	return an
}

func (h *hostAddrs) release(ifindex int) {
	if an := h.anns[ifindex]; an != nil {
		an.close()
		delete(h.anns, ifindex)
	}
}

func (h *hostAddrs) close() {
	for idx := range h.anns {
		h.release(idx)
	}
}
