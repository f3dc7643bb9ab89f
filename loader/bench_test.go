package loader

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/xvrrp/xvrrp/vrrp"
)

// benchRun runs prog over frame with the kernel repeating it, and reports the
// kernel's own ns per run (the syscall is paid once per batch) as ns/packet.
// BPF_PROG_TEST_RUN costs something per run by itself (copying the frame in,
// building the context, the loop): alongside, the same frame runs through an
// empty program of the same type, and net-ns/packet is the difference, the
// program's own cost.
func benchRun(b *testing.B, prog *ebpf.Program, frame []byte, want uint32) {
	const batch = 100000
	empty := emptyProgram(b, prog.Type())
	b.ReportAllocs()
	var total, floor time.Duration
	for b.Loop() {
		ret, dur, err := prog.Benchmark(frame, batch, nil)
		if err != nil {
			b.Fatal(err)
		}
		if ret != want {
			b.Fatalf("returned %d, want %d", ret, want)
		}
		total += dur
		if _, dur, err = empty.Benchmark(frame, batch, nil); err != nil {
			b.Fatal(err)
		}
		floor += dur
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/packet")
	b.ReportMetric(float64((total-floor).Nanoseconds())/float64(b.N), "net-ns/packet")
}

// emptyProgram returns 0 (XDP_ABORTED, TC_ACT_OK) and does nothing else.
func emptyProgram(b *testing.B, typ ebpf.ProgramType) *ebpf.Program {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         typ,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { prog.Close() })
	return prog
}

func BenchmarkXDP(b *testing.B) {
	d := newDatapath(b)
	configure(b, d)
	b.Run("non-VRRP", func(b *testing.B) {
		benchRun(b, d.XDP(), udpFrame(netip.MustParseAddr("192.0.2.200"), vip4), xdpPass)
	})
	b.Run("valid-v3-ipv4", func(b *testing.B) {
		benchRun(b, d.XDP(), advert(b, v3(), src4, vrrp.Group4, 255), xdpPass)
	})
	b.Run("valid-v2-pass", func(b *testing.B) {
		benchRun(b, d.XDP(), advert(b, v2(), src4, vrrp.Group4, 255), xdpPass)
	})
	b.Run("valid-v3-ipv6", func(b *testing.B) {
		benchRun(b, d.XDP(), advert(b, v6(), src6, vrrp.Group6, 255), xdpPass)
	})
	// An instance that checks the advertised addresses (VRID 59: two).
	b.Run("valid-v3-ipv4-addr-check", func(b *testing.B) {
		a := v3()
		a.VRID, a.Addrs = 59, []netip.Addr{vip4, vip4b}
		benchRun(b, d.XDP(), advert(b, a, src4, vrrp.Group4, 255), xdpPass)
	})
}

func BenchmarkFence(b *testing.B) {
	d := newDatapath(b)
	owner := key(51, FamilyIPv4)
	d.PutVIP(VIPKey{Family: FamilyIPv4, Addr: addr16(vip4)}, owner)
	d.PutInstance(owner, Instance{State: StateMaster, LeaseUntilNs: monotonicNow(b) + uint64(time.Hour)})
	client := netip.MustParseAddr("192.0.2.200")
	b.Run("vip-ingress", func(b *testing.B) { benchRun(b, d.FenceIngress(), udpFrame(client, vip4), tcNext) })
	b.Run("other-ingress", func(b *testing.B) { benchRun(b, d.FenceIngress(), udpFrame(client, other), tcNext) })
}
