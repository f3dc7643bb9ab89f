package loader

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// TestVMACEgress: what leaves an interface listed as a VMAC (PutVMAC) and is
// the kernel's own IGMP or MLD report goes with the parent's source MAC; a
// router solicitation is dropped; adverts, ARP and the rest pass untouched;
// an interface not listed (ForgetVMAC) is left alone. prog.Run gives the skb
// the loopback interface, so loopback's index stands for the VMAC.
func TestVMACEgress(t *testing.T) {
	d := newDatapath(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	parent := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	if err := d.PutVMAC(lo.Index, parent); err != nil {
		t.Fatal(err)
	}
	src4, group4 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("224.0.0.18")
	igmp := udpFrame(src4, group4)
	igmp[14+9] = 2 // IGMP
	ll, mld := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::16")
	// MLDv2 report: IPv6, hop-by-hop (router alert), ICMPv6 143.
	mldPkt := []byte{0x60, 0, 0, 0, 0, 8 + 8, 0, 1}
	mldPkt = append(mldPkt, ll.AsSlice()...)
	mldPkt = append(mldPkt, mld.AsSlice()...)
	mldPkt = append(mldPkt, 58, 0, 5, 2, 0, 0, 1, 0) // next: ICMPv6; router alert
	mldPkt = append(mldPkt, 143, 0, 0, 0, 0, 0, 0, 0)
	rs := ndFrame(133, ll, netip.MustParseAddr("ff02::2"))
	for _, tc := range []struct {
		name    string
		frame   []byte
		want    uint32
		srcFrom net.HardwareAddr // the source MAC after; nil: unchanged
	}{
		{"IGMP report", igmp, tcNext, parent},
		{"MLDv2 report", frame(mldPkt, true), tcNext, parent},
		{"router solicitation", rs, tcShot, nil},
		{"advert", udpFrameProto(src4, group4, 112), tcNext, nil},
		{"ARP", arpFrame(src4, 1), tcNext, nil},
		{"neighbour advertisement", naFrame(ll), tcNext, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, len(tc.frame)+256)
			opts := &ebpf.RunOptions{Data: tc.frame, DataOut: out}
			ret, err := d.FenceEgress().Run(opts)
			if err != nil {
				t.Fatal(err)
			}
			if ret != tc.want {
				t.Errorf("verdict %d, want %d", int32(ret), int32(tc.want))
			}
			want := tc.frame[6:12]
			if tc.srcFrom != nil {
				want = tc.srcFrom
			}
			if tc.want != tcShot && !bytes.Equal(opts.DataOut[6:12], want) {
				t.Errorf("source MAC %v after, want %v", net.HardwareAddr(opts.DataOut[6:12]), net.HardwareAddr(want))
			}
		})
	}
	if err := d.ForgetVMAC(lo.Index); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(igmp)+256)
	opts := &ebpf.RunOptions{Data: igmp, DataOut: out}
	if ret, err := d.FenceEgress().Run(opts); err != nil || ret != tcNext || !bytes.Equal(opts.DataOut[6:12], igmp[6:12]) {
		t.Errorf("not a VMAC: verdict %d (%v), source %v; want it untouched", int32(ret), err, net.HardwareAddr(opts.DataOut[6:12]))
	}
	if ret, err := d.FenceEgress().Run(&ebpf.RunOptions{Data: rs}); err != nil || ret != tcNext {
		t.Errorf("not a VMAC: a router solicitation's verdict %d (%v), want it to pass", int32(ret), err)
	}
}

// udpFrameProto is udpFrame with another IP protocol.
func udpFrameProto(src, dst netip.Addr, proto byte) []byte {
	f := udpFrame(src, dst)
	f[14+9] = proto
	return f
}
