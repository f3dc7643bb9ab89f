package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// sendFrames sends whole Ethernet frames from the host's eth0 with a packet
// socket, tags and all, as a forger on the segment would.
func sendFrames(h *lab.Host, frames ...[]byte) error {
	return h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
				return fmt.Errorf("send frame: %w", err)
			}
		}
		return nil
	})
}

// TestVLANTaggedAdverts: an advert carried in a VLAN tag is its VLAN's, never
// one for the instances of the interface it arrived on. The lab's bridge takes
// an in-band tag out of the frame (skb->vlan_tci) and the veth delivers it that
// way, as a NIC with VLAN stripping does: XDP sees what looks like an untagged
// advert and finds it valid, and the fence's ingress, which sees the tag, does
// not record it. The same advert untagged is recorded. Before, XDP recorded the
// tagged adverts (priority 0 here: the master resigning).
func TestVLANTaggedAdverts(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode loader.TCMode
	}{{"tcx", loader.TCX}, {"clsact", loader.TCClsact}} {
		t.Run(mode.name, func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			pinDir := fmt.Sprintf("/sys/fs/bpf/xvrrp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			t.Cleanup(func() { os.RemoveAll(pinDir) })
			var (
				dp      *loader.Datapath
				ifindex int
			)
			err := h2.Do(func() (err error) {
				lnk, err := netlink.LinkByName(h2.Iface)
				if err != nil {
					return err
				}
				ifindex = lnk.Attrs().Index
				if dp, err = loader.Load(loader.Options{PinDir: pinDir, TC: mode.mode}); err != nil {
					return err
				}
				return dp.Attach(ifindex)
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h2.Do(dp.Remove) })
			key := loader.InstanceKey{Ifindex: uint32(ifindex), Vrid: 51, Family: loader.FamilyIPv4}
			if err := dp.PutInstance(key, loader.Instance{Version: 3, State: loader.StateBackup, MinIntervalCs: 1, MaxIntervalCs: 4095}); err != nil {
				t.Fatal(err)
			}

			a := vrrp.Advert{Version: 3, VRID: 51, Priority: 0, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip4}}
			pkt, err := a.AppendPacket(nil, h1.IPv4.Addr(), vrrp.Group4, 255)
			if err != nil {
				t.Fatal(err)
			}
			untagged := append(append(append([]byte{1, 0, 0x5e, 0, 0, 0x12}, h1.MAC...), 0x08, 0x00), pkt...)
			tag := func(f []byte, tpids ...uint16) []byte {
				out := append([]byte(nil), f[:12]...)
				for _, tpid := range tpids {
					out = binary.BigEndian.AppendUint16(out, tpid)
					out = binary.BigEndian.AppendUint16(out, 999)
				}
				return append(out, f[12:]...)
			}
			counters := func() []uint64 {
				t.Helper()
				c, err := dp.Counters()
				if err != nil {
					t.Fatal(err)
				}
				return c
			}

			before := counters()
			const n = 5
			for _, f := range [][]byte{tag(untagged, 0x8100), tag(untagged, 0x88a8), tag(untagged, 0x88a8, 0x8100)} {
				for range n {
					if err := sendFrames(h1, f); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The single tags arrive out of band: judged valid by XDP, then
			// refused by tc. The double tag keeps its inner tag in the frame:
			// XDP passes it untouched.
			deadline := time.Now().Add(5 * time.Second)
			for counters()[loader.CounterVLANTagged]-before[loader.CounterVLANTagged] < 2*n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			after := counters()
			if got := after[loader.CounterVLANTagged] - before[loader.CounterVLANTagged]; got != 2*n {
				t.Errorf("vlan_tagged moved by %d, want %d", got, 2*n)
			}
			if got := after[vrrp.ReasonValid] - before[vrrp.ReasonValid]; got != 2*n {
				t.Errorf("valid moved by %d, want %d (XDP cannot see a tag kept out of band)", got, 2*n)
			}
			if p, err := dp.Peer(key); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("a tagged advert was recorded as the peer: %+v, %v", p, err)
			}

			if err := sendFrames(h1, untagged); err != nil {
				t.Fatal(err)
			}
			deadline = time.Now().Add(5 * time.Second)
			for {
				p, err := dp.Peer(key)
				if err == nil {
					if p.Count != 1 || p.Priority != 0 || p.LastSeenNs == 0 {
						t.Errorf("peer = %+v, want one advert of priority 0", p)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the untagged advert was not recorded: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestVLANTaggedForgeriesChangeNoState: a running pair hears, for a second,
// adverts tagged with a VLAN that has no device on either host: h1 (the master)
// resigning, and a stranger claiming priority 254. Neither host changes state,
// and both count the forgeries as tagged. Before, h2 took over at once (h1's
// priority 0) and h1 stepped down (254 beats 150).
func TestVLANTaggedForgeriesChangeNoState(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
	h1, client := l.Hosts[0], l.Client
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
	time.Sleep(300 * time.Millisecond)
	logs1, logs2 := strings.Count(x1.Output(), "Entering"), strings.Count(x2.Output(), "Entering")

	forge := func(src netip.Addr, prio uint8) []byte {
		a := vrrp.Advert{Version: 3, VRID: 51, Priority: prio, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip4}}
		pkt, err := a.AppendPacket(nil, src, vrrp.Group4, 255)
		if err != nil {
			t.Fatal(err)
		}
		f := append([]byte{1, 0, 0x5e, 0, 0, 0x12}, client.MAC...)
		f = append(f, 0x81, 0x00, 0x03, 0xe7, 0x08, 0x00) // 802.1Q, VID 999
		return append(f, pkt...)
	}
	resign, claim := forge(h1.IPv4.Addr(), 0), forge(client.IPv4.Addr(), 254)
	for range 50 {
		if err := sendFrames(client, resign, claim); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(x1.Output(), "Entering"); n != logs1 {
		t.Errorf("h1 changed state under tagged forgeries:\n%s", x1.Output())
	}
	if n := strings.Count(x2.Output(), "Entering"); n != logs2 {
		t.Errorf("h2 changed state under tagged forgeries:\n%s", x2.Output())
	}
	for _, x := range []*lab.Xvrrp{x1, x2} {
		dp, err := loader.Load(loader.Options{PinDir: x.PinDir, Observe: true})
		if err != nil {
			t.Fatal(err)
		}
		c, err := dp.Counters()
		dp.Close()
		if err != nil {
			t.Fatal(err)
		}
		if c[loader.CounterVLANTagged] < 50 {
			t.Errorf("%s counted %d tagged adverts, want at least 50", x.Host.Name, c[loader.CounterVLANTagged])
		}
	}
}
