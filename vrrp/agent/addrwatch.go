package agent

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// addrGone is an address removed from an interface, or (resync) word that
// removals may have been lost.
type addrGone struct {
	addr   netip.Addr
	index  int
	resync bool
}

// watchAddrs sends every address removal to out until done is closed. Like
// watchLinks, it subscribes again when the subscription ends (ENOBUFS: the
// kernel dropped notifications) and then sends a resync, since a removal may
// have been among those lost.
func watchAddrs(done <-chan struct{}, out chan<- addrGone, log *slog.Logger) error {
	subscribe := func() (chan netlink.AddrUpdate, error) {
		updates := make(chan netlink.AddrUpdate, 64)
		err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
			ErrorCallback: func(err error) {
				select {
				case <-done:
				default:
					log.Warn("address updates", "error", err)
				}
			},
		})
		return updates, err
	}
	updates, err := subscribe()
	if err != nil {
		return fmt.Errorf("subscribe to address updates: %w", err)
	}
	go func() {
		for {
			for u := range updates {
				if u.NewAddr {
					continue
				}
				ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
				if !ok {
					continue
				}
				select {
				case out <- addrGone{addr: ip.Unmap(), index: u.LinkIndex}:
				case <-done:
					return
				}
			}
			for {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if updates, err = subscribe(); err == nil {
					log.Info("address updates resubscribed; checking every master's addresses")
					select {
					case out <- addrGone{resync: true}:
					case <-done:
						return
					}
					break
				}
				log.Warn("address updates", "error", err)
			}
		}
	}()
	return nil
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
		for _, v := range in.held() {
			if !g.resync && (v.ip() != g.addr || v.link.Attrs().Index != g.index) {
				continue
			}
			// Our own removals arrive here too, after the instance left
			// MASTER, and a notification may be older than the state.
			if a.addrs.present(v) {
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
}
