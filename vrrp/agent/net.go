package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// sender sends one instance's adverts from a raw IP socket bound to its
// interface: IPv4 with a header of our own (TTL 255, DSCP CS6 as keepalived), IPv6
// with hop limit 255 from the interface's link-local address.
type sender struct {
	fd   int
	src  netip.Addr
	dsts []netip.Addr
	zone int
	buf  []byte
}

func newSender(ifi *net.Interface, src netip.Addr, dsts []netip.Addr, group netip.Addr) (*sender, error) {
	s := &sender{src: src, dsts: dsts, zone: ifi.Index}
	family := unix.AF_INET
	if src.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.Protocol)
	if err != nil {
		return nil, fmt.Errorf("raw VRRP socket: %w", err)
	}
	s.fd = fd
	fail := func(what string, err error) (*sender, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("raw VRRP socket on %s: %s: %w", ifi.Name, what, err)
	}
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		return fail("bind to device", err)
	}
	// This socket only sends: the kernel's XDP program reads adverts. Drop
	// every copy the raw socket would queue.
	drop := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		return fail("attach drop filter", err)
	}
	if src.Is4() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
			return fail("IP_HDRINCL", err)
		}
		mreq := &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
			return fail("IP_MULTICAST_IF", err)
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
		// Joining the group makes a real NIC accept the group's frames, which
		// XDP then sees.
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			return fail("join "+group.String(), err)
		}
		return s, nil
	}
	for _, o := range []struct {
		opt, val int
	}{
		{unix.IPV6_MULTICAST_HOPS, 255},
		{unix.IPV6_UNICAST_HOPS, 255},
		{unix.IPV6_MULTICAST_IF, ifi.Index},
		{unix.IPV6_MULTICAST_LOOP, 0},
	} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
			return fail(fmt.Sprintf("IPv6 option %d", o.opt), err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
		return fail("bind "+src.String(), err)
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifi.Index)}
	if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		return fail("join "+group.String(), err)
	}
	return s, nil
}

// send sends a to every destination.
func (s *sender) send(a *vrrp.Advert) error {
	var errs []error
	for _, dst := range s.dsts {
		var err error
		if s.src.Is4() {
			if s.buf, err = a.AppendPacket(s.buf[:0], s.src, dst, 255); err != nil {
				return err
			}
			err = unix.Sendto(s.fd, s.buf, 0, &unix.SockaddrInet4{Addr: dst.As4()})
		} else {
			if s.buf, err = a.Append(s.buf[:0], s.src, dst); err != nil {
				return err
			}
			sa := &unix.SockaddrInet6{Addr: dst.As16()}
			if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
				sa.ZoneId = uint32(s.zone)
			}
			err = unix.Sendto(s.fd, s.buf, 0, sa)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("send advert to %v: %w", dst, err))
		}
	}
	return errors.Join(errs...)
}

func (s *sender) close() { unix.Close(s.fd) }

// sourceAddr chooses where adverts come from as keepalived does: the configured
// mcast_src_ip or unicast_src_ip, else the interface's first IPv4 address that is
// not one of the VIPs; for IPv6, its link-local address, or for unicast its first
// global one.
func sourceAddr(ifi *net.Interface, family int, unicast bool, configured netip.Addr, vips map[netip.Addr]bool) (netip.Addr, error) {
	if configured.IsValid() {
		return configured, nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ip = ip.Unmap()
		if vips[ip] {
			continue
		}
		switch {
		case family == 4 && ip.Is4(),
			family == 6 && ip.Is6() && !unicast && ip.IsLinkLocalUnicast(),
			family == 6 && ip.Is6() && unicast && ip.IsGlobalUnicast():
			return ip, nil
		}
	}
	if family == 6 {
		return netip.Addr{}, fmt.Errorf("%s has no IPv6 address to send adverts from", ifi.Name)
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address to send adverts from (set mcast_src_ip or unicast_src_ip)", ifi.Name)
}

// vip is one virtual address as netlink adds it.
type vip struct {
	link netlink.Link
	addr *netlink.Addr
}

func (v vip) String() string { return v.addr.IPNet.String() + " dev " + v.link.Attrs().Name }

func (v vip) ip() netip.Addr {
	ip, _ := netip.AddrFromSlice(v.addr.IP)
	return ip.Unmap()
}

func (v vip) add() error {
	err := netlink.AddrReplace(v.link, v.addr)
	if err != nil {
		return fmt.Errorf("add VIP %v: %w", v, err)
	}
	return nil
}

func (v vip) del() error {
	err := netlink.AddrDel(v.link, v.addr)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove VIP %v: %w", v, err)
	}
	return nil
}

// present reports whether the address is on its interface.
func (v vip) present() bool {
	family := netlink.FAMILY_V4
	if v.addr.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(v.link, family)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.Equal(v.addr.IP) {
			return true
		}
	}
	return false
}

// announcer sends gratuitous ARPs and unsolicited neighbour advertisements for
// VIPs on one interface.
type announcer struct {
	ifi *net.Interface
	arp *arp.Client
	ndp *ndp.Conn
}

// open opens the socket for ip's family ahead of time, so that the first
// announcement after a takeover does not pay for it.
func (a *announcer) open(ip netip.Addr) error {
	if ip.Is4() && a.arp == nil {
		c, err := arp.Dial(a.ifi)
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", a.ifi.Name, err)
		}
		a.arp = c
	}
	if ip.Is6() && a.ndp == nil {
		c, _, err := ndp.Listen(a.ifi, ndp.LinkLocal)
		if err != nil {
			return fmt.Errorf("neighbour advertisement on %s: %w", a.ifi.Name, err)
		}
		a.ndp = c
	}
	return nil
}

func (a *announcer) announce(ip netip.Addr) error {
	if err := a.open(ip); err != nil {
		return err
	}
	if ip.Is4() {
		p, err := arp.NewPacket(arp.OperationRequest, a.ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
		if err != nil {
			return err
		}
		return a.arp.WriteTo(p, ethernet.Broadcast)
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: a.ifi.HardwareAddr}},
	}
	return a.ndp.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes())
}

func (a *announcer) close() {
	if a.arp != nil {
		a.arp.Close()
	}
	if a.ndp != nil {
		a.ndp.Close()
	}
}
