package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// rawSocket is a raw VRRP socket bound to one interface, shared by every
// instance that sends from it. The kernel gives each socket of protocol 112 a
// copy of every advert the host receives, even one that its filter then drops,
// so a socket per instance would make every advert cost as many copies as there
// are instances. Adverts are queued and go out together with sendmmsg.
//
// IPv4 sockets carry a header of our own (TTL 255, DSCP CS6 as keepalived);
// IPv6 ones hop limit 255, bound to the source address.
type rawSocket struct {
	ifi   *net.Interface
	fd    int
	conn  net.PacketConn
	batch interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	groups map[netip.Addr]bool
	msgs   []ipv4.Message
	bufs   [][]byte
	owners []*sender // who queued each message
	n      int       // queued
}

// sockKey names a rawSocket: IPv4 sockets are per interface, as the source is in
// our header; IPv6 sockets per interface and source address.
type sockKey struct {
	ifindex int
	src     netip.Addr
}

func keyOf(ifi *net.Interface, src netip.Addr) sockKey {
	if src.Is4() {
		return sockKey{ifindex: ifi.Index, src: netip.IPv4Unspecified()}
	}
	return sockKey{ifindex: ifi.Index, src: src}
}

func openRawSocket(ifi *net.Interface, src netip.Addr) (_ *rawSocket, err error) {
	family := unix.AF_INET
	if src.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.Protocol)
	if err != nil {
		return nil, fmt.Errorf("raw VRRP socket: %w", err)
	}
	s := &rawSocket{ifi: ifi, fd: fd, groups: map[netip.Addr]bool{}}
	defer func() {
		if err != nil {
			s.close()
			err = fmt.Errorf("raw VRRP socket on %s: %w", ifi.Name, err)
		}
	}()
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		return nil, fmt.Errorf("bind to device: %w", err)
	}
	// This socket only sends: the kernel's XDP program reads adverts. Drop
	// every copy the raw socket would queue.
	drop := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		return nil, fmt.Errorf("attach drop filter: %w", err)
	}
	if src.Is4() {
		for _, o := range []struct {
			name     string
			opt, val int
		}{
			{"IP_HDRINCL", unix.IP_HDRINCL, 1},
			{"IP_MULTICAST_LOOP", unix.IP_MULTICAST_LOOP, 0},
		} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, o.opt, o.val); err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
		}
		mreq := &unix.IPMreqn{Ifindex: int32(ifi.Index)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
			return nil, fmt.Errorf("IP_MULTICAST_IF: %w", err)
		}
	} else {
		for _, o := range []struct {
			name     string
			opt, val int
		}{
			{"IPV6_MULTICAST_HOPS", unix.IPV6_MULTICAST_HOPS, 255},
			{"IPV6_UNICAST_HOPS", unix.IPV6_UNICAST_HOPS, 255},
			{"IPV6_MULTICAST_IF", unix.IPV6_MULTICAST_IF, ifi.Index},
			{"IPV6_MULTICAST_LOOP", unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_TCLASS", unix.IPV6_TCLASS, 0xc0}, // CS6, as keepalived and FRR send, and our IPv4 adverts
		} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
			return nil, fmt.Errorf("bind %v: %w", src, err)
		}
	}
	// A net.PacketConn of the same socket, for sendmmsg through x/net.
	f := os.NewFile(uintptr(fd), "vrrp")
	s.conn, err = net.FilePacketConn(f)
	f.Close() // FilePacketConn made its own descriptor; s.fd is closed with f
	s.fd = -1
	if err != nil {
		return nil, err
	}
	if src.Is4() {
		s.batch = ipv4.NewPacketConn(s.conn)
	} else {
		s.batch = ipv6.NewPacketConn(s.conn)
	}
	raw, err := s.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	raw.Control(func(fd uintptr) { s.fd = int(fd) })
	return s, nil
}

// join makes the interface accept the group's frames, which XDP then sees.
func (s *rawSocket) join(group netip.Addr) error {
	if s.groups[group] || !group.IsMulticast() {
		return nil
	}
	var err error
	if group.Is4() {
		err = unix.SetsockoptIPMreqn(s.fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(s.ifi.Index)})
	} else {
		err = unix.SetsockoptIPv6Mreq(s.fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
			&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(s.ifi.Index)})
	}
	if err != nil {
		return fmt.Errorf("join %v on %s: %w", group, s.ifi.Name, err)
	}
	s.groups[group] = true
	return nil
}

// slot returns the buffer for the next queued packet.
func (s *rawSocket) slot() []byte {
	if s.n == len(s.bufs) {
		s.bufs = append(s.bufs, make([]byte, 0, 128))
		s.msgs = append(s.msgs, ipv4.Message{Buffers: make([][]byte, 1)})
		s.owners = append(s.owners, nil)
	}
	return s.bufs[s.n][:0]
}

// queue adds the packet built in the buffer slot returned, sent for owner.
func (s *rawSocket) queue(b []byte, dst netip.Addr, owner *sender) {
	s.bufs[s.n] = b
	ip := &net.IPAddr{IP: dst.AsSlice()}
	if dst.Is6() && (dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast()) {
		ip.Zone = s.ifi.Name
	}
	s.msgs[s.n].Buffers[0], s.msgs[s.n].Addr = b, ip
	s.msgs[s.n].OOB = owner.hopLimit
	s.owners[s.n] = owner
	s.n++
}

// flush sends what is queued. A packet the kernel refuses is recorded on its
// sender and skipped; the rest still go. sendmmsg reports a refusal of the
// first packet as n < 0 (or 0) with the error, of a later one as a short count.
func (s *rawSocket) flush() {
	for sent := 0; sent < s.n; {
		n, err := s.batch.WriteBatch(s.msgs[sent:s.n], 0)
		n = max(n, 0)
		for _, o := range s.owners[sent : sent+n] {
			o.sent++
		}
		sent += n
		switch {
		case err != nil && sent < s.n:
			s.owners[sent].fail(s.msgs[sent].Addr, err)
			sent++
		case err != nil, n == 0:
			sent = s.n // nothing more will go; never spin
		}
	}
	clear(s.owners[:s.n])
	s.n = 0
}

func (s *rawSocket) close() {
	if s.conn != nil {
		s.conn.Close()
	} else if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// sender queues one instance's adverts on its interface's socket, and keeps
// what became of them since the last flush.
type sender struct {
	sock *rawSocket
	src  netip.Addr
	dsts []netip.Addr
	// ttl is a unicast instance's unicast_ttl (0: 255); hopLimit carries it
	// for IPv6, whose header the kernel writes, as ancillary data.
	ttl      uint8
	hopLimit []byte

	queued, sent int // packets since the last flush
	// failures since the last flush; unreachable counts refusals that blame
	// one destination (a unicast peer that does not answer ARP or NDP), not
	// this node's ability to send.
	failures    []error
	unreachable int
}

// queue queues a to every destination; the agent flushes.
func (s *sender) queue(a *vrrp.Advert) error {
	for _, dst := range s.dsts {
		b, err := s.build(s.sock.slot(), a, dst)
		if err != nil {
			return err
		}
		s.sock.queue(b, dst, s)
		s.queued++
	}
	return nil
}

func (s *sender) fail(dst net.Addr, err error) {
	if unreachable(err) {
		s.unreachable++
	}
	s.failures = append(s.failures, fmt.Errorf("send advert to %v: %w", dst, err))
}

// outcome is what became of the adverts queued since the last flush, which it
// forgets: ok when at least one left (or the only refusals were unreachable
// destinations), and the failures, if any.
func (s *sender) outcome() (queued bool, ok bool, failures []error) {
	queued = s.queued > 0
	ok = s.sent > 0 || (s.unreachable > 0 && s.unreachable == len(s.failures))
	failures = s.failures
	s.queued, s.sent, s.unreachable, s.failures = 0, 0, 0, nil
	return queued, ok, failures
}

// unreachable reports whether a send error blames a destination rather than
// this node: the neighbour of a unicast peer did not resolve, or an ICMP error
// came back from it (a peer with no VRRP daemon answers "protocol
// unreachable", and the raw socket reports that on its next send). A master
// whose only peer died or stopped must keep its VIP, as keepalived's does.
func unreachable(err error) bool {
	for _, e := range []error{unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENONET, unix.ENOPROTOOPT, unix.ECONNREFUSED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// interfaceGone reports whether a send error means the interface cannot send
// at all, as carrier loss does: nothing is gained by trying again before a link
// update says it is back.
func interfaceGone(err error) bool {
	return errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO)
}

func (s *sender) build(b []byte, a *vrrp.Advert, dst netip.Addr) ([]byte, error) {
	if s.src.Is4() {
		return a.AppendPacket(b, s.src, dst, s.ttlTo(dst))
	}
	return a.Append(b, s.src, dst)
}

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
	// noTrack: removed by something else while master, it stays removed
	// until the next mastership (keepalived's no_track).
	noTrack bool
}

func (v vip) String() string { return v.addr.IPNet.String() + " dev " + v.link.Attrs().Name }

func (v vip) ip() netip.Addr {
	ip, _ := netip.AddrFromSlice(v.addr.IP)
	return ip.Unmap()
}

func (v vip) add(nl *netlink.Handle) error {
	err := nl.AddrReplace(v.link, v.addr)
	if err != nil {
		return fmt.Errorf("add VIP %v: %w", v, err)
	}
	return nil
}

func (v vip) del(nl *netlink.Handle) error {
	err := nl.AddrDel(v.link, v.addr)
	// Not there, or its interface is gone and the address with it.
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("remove VIP %v: %w", v, err)
	}
	return nil
}

// present reports whether the address is on its interface.
func (v vip) present(nl *netlink.Handle) bool {
	family := netlink.FAMILY_V4
	if v.addr.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	addrs, err := nl.AddrList(v.link, family)
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
	arp *packet.Conn
	ndp *ndp.Conn
}

// open opens the socket for ip's family ahead of time, so that the first
// announcement after a takeover does not pay for it.
func (a *announcer) open(ip netip.Addr) error {
	// Both sockets only send. The packet socket has protocol 0, so the
	// kernel queues it no frames; the ICMPv6 one filters every type out.
	if ip.Is4() && a.arp == nil {
		// A packet socket, not arp.New, which wants an IPv4 address on
		// the interface: a VMAC has none until its instance is master.
		p, err := packet.Listen(a.ifi, packet.Raw, 0, nil)
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", a.ifi.Name, err)
		}
		a.arp = p
	}
	if ip.Is6() && a.ndp == nil {
		c, _, err := ndp.Listen(a.ifi, ndp.LinkLocal)
		if err != nil {
			return fmt.Errorf("neighbour advertisement on %s: %w", a.ifi.Name, err)
		}
		var none ipv6.ICMPFilter
		none.SetAll(true)
		if err := c.SetICMPFilter(&none); err != nil {
			c.Close()
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
		pb, err := p.MarshalBinary()
		if err != nil {
			return err
		}
		f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: a.ifi.HardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: pb}
		fb, err := f.MarshalBinary()
		if err != nil {
			return err
		}
		_, err = a.arp.WriteTo(fb, &packet.Addr{HardwareAddr: ethernet.Broadcast})
		return err
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
