package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// addrGone is an address or a route removed, or (resync) word that removals
// may have been lost.
type addrGone struct {
	route  bool
	resync bool
	// added: an address was added, not removed (for track_src_ip).
	added bool
	// An address: which, and on which interface.
	addr  netip.Addr
	index int
	// A route: its destination and table.
	dst   *net.IPNet
	table int
	// rule: a policy rule was removed (which one is not kept: the masters'
	// rules are few, and all are checked).
	rule bool
}

// watchAddrs sends every removal of an address or a route to out until done
// is closed. Like watchLinks, it subscribes again when a subscription ends
// (ENOBUFS: the kernel dropped notifications) and then sends a resync, since
// a removal may have been among those lost.
func watchAddrs(done <-chan struct{}, out chan<- addrGone, log *slog.Logger) error {
	onErr := func(what string) func(error) {
		return func(err error) {
			select {
			case <-done: // the socket was closed to stop
			default:
				log.Warn(what, "error", err)
			}
		}
	}
	err := watch(done, out, log, "address updates", func() (chan netlink.AddrUpdate, error) {
		ch := make(chan netlink.AddrUpdate, 64)
		return ch, netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr("address updates")})
	}, func(u netlink.AddrUpdate) (addrGone, bool) {
		ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
		return addrGone{addr: ip.Unmap(), index: u.LinkIndex, added: u.NewAddr}, ok
	}, addrGone{resync: true})
	if err != nil {
		return err
	}
	err = watch(done, out, log, "route updates", func() (chan netlink.RouteUpdate, error) {
		ch := make(chan netlink.RouteUpdate, 64)
		return ch, netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr("route updates")})
	}, func(u netlink.RouteUpdate) (addrGone, bool) {
		return addrGone{route: true, dst: u.Dst, table: u.Table}, u.Type == unix.RTM_DELROUTE
	}, addrGone{route: true, resync: true})
	if err != nil {
		return err
	}
	return watch(done, out, log, "rule updates", func() (chan uint16, error) {
		return subscribeRules(done, onErr("rule updates"))
	}, func(typ uint16) (addrGone, bool) {
		return addrGone{rule: true}, typ == unix.RTM_DELRULE
	}, addrGone{rule: true, resync: true})
}

// subscribeRules sends the type of every IPv4 and IPv6 policy rule
// notification (RTM_NEWRULE, RTM_DELRULE) until done is closed or the socket
// fails (ENOBUFS: notifications were dropped), when it closes the channel.
// vishvananda/netlink has no RuleSubscribe.
func subscribeRules(done <-chan struct{}, onErr func(error)) (chan uint16, error) {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE)
	if err != nil {
		return nil, err
	}
	ch := make(chan uint16, 64)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-stopped:
		}
		s.Close()
	}()
	go func() {
		defer close(ch)
		defer close(stopped)
		for {
			msgs, _, err := s.Receive()
			if err != nil {
				onErr(err)
				return
			}
			for _, m := range msgs {
				select {
				case ch <- m.Header.Type:
				case <-done:
					return
				}
			}
		}
	}()
	return ch, nil
}

// watch runs a netlink subscription, sending what conv keeps to out, and
// subscribes again, then sends resync, whenever the subscription ends.
func watch[U any](done <-chan struct{}, out chan<- addrGone, log *slog.Logger, what string,
	subscribe func() (chan U, error), conv func(U) (addrGone, bool), resync addrGone) error {
	updates, err := subscribe()
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", what, err)
	}
	go func() {
		for {
			for u := range updates {
				g, keep := conv(u)
				if !keep {
					continue
				}
				select {
				case out <- g:
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
					log.Info(what + " resubscribed; checking what every master holds")
					select {
					case out <- resync:
					case <-done:
						return
					}
					break
				}
				log.Warn(what, "error", err)
			}
		}
	}()
	return nil
}

// removed dispatches a removal to addrRemoved, routeRemoved or ruleRemoved.
func (a *Agent) removed(g addrGone) {
	if g.rule {
		a.ruleRemoved()
		return
	}
	if g.route {
		a.routeRemoved(g)
		return
	}
	a.trackSrc(g)
	if !g.added {
		a.addrRemoved(g)
	}
}

// addrRemoved puts back an address a master holds that something else —
// NetworkManager, systemd-networkd, an operator — removed: the master still
// advertises it and its fence lets its traffic through, so its absence is an
// outage nobody else will end. keepalived fails over instead (its issue
// #2479). Logged and counted (status: restored).
func (a *Agent) addrRemoved(g addrGone) {
	for _, in := range a.insts {
		if !in.isMaster() {
			continue
		}
		if name, gone := a.vmacMissing(in); gone {
			// The address went with its VMAC, deleted by something
			// else: made again, the VMAC gets the addresses back.
			a.log.Warn(fmt.Sprintf("(%s) VMAC interface %s was deleted by something else: re-creating it", in.cfg.Name, name))
			if a.remakeVMACs(in, a.now()) {
				a.reassess("")
			}
			continue
		}
		for _, v := range in.held() {
			if !g.resync && (v.ip() != g.addr || v.link.Attrs().Index != g.index) {
				continue
			}
			// Our own removals arrive here too, after the instance left
			// MASTER, and a notification may be older than the state.
			// no_track: stays removed until the next mastership.
			if v.noTrack || a.addrs.present(v) {
				continue
			}
			if err := a.addrs.add(v); err != nil {
				a.log.Error(fmt.Sprintf("(%s) put back %v: %v", in.cfg.Name, v, err))
				continue
			}
			in.restored++
			a.log.Warn(fmt.Sprintf("(%s) %v was removed by something else while master: put back", in.cfg.Name, v),
				"restored", in.restored)
			if err := a.addrs.announce(v); err != nil {
				a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
	}
	// A route through an address goes with it.
	a.routeRemoved(addrGone{route: true, resync: true})
}
