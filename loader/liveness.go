package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
)

// fast_liveness in the kernel's terms (bpf/liveness.h tells the protocol).

// Liveness counters in the stats map, after the fence's.
const (
	CounterLivenessAnswered    = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_ANSWERED)
	CounterLivenessReply       = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_REPLY)
	CounterLivenessMalformed   = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_MALFORMED)
	CounterLivenessOff         = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_OFF)
	CounterLivenessDestination = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_DESTINATION)
	CounterLivenessNoLease     = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_NO_LEASE)
	CounterLivenessUnsolicited = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_UNSOLICITED)
	CounterLivenessForged      = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_FORGED)
	CounterLivenessNonce       = int(bpfXvrrpCounterXVRRP_COUNTER_LIVENESS_NONCE)

	FlagLiveness      = uint32(bpfXvrrpFlagXVRRP_F_LIVENESS)
	EventLivenessLost = uint32(bpfXvrrpEventKindXVRRP_EVENT_LIVENESS_LOST)
)

// CounterNames names the counters after the reasons, as status and metrics
// print them.
var CounterNames = map[int]string{
	CounterLivenessAnswered:    "liveness_answered",
	CounterLivenessReply:       "liveness_reply",
	CounterLivenessMalformed:   "liveness_malformed",
	CounterLivenessOff:         "liveness_off",
	CounterLivenessDestination: "liveness_destination",
	CounterLivenessNoLease:     "liveness_no_lease",
	CounterLivenessUnsolicited: "liveness_unsolicited",
	CounterLivenessForged:      "liveness_forged",
	CounterLivenessNonce:       "liveness_nonce",
}

// The probe on the wire: IPv4, TTL 255, UDP from and to LivenessPort with
// checksum 0, and a ProbeLen-byte payload (struct xvrrp_probe).
const (
	LivenessPort   = 7112
	ProbeLen       = 16
	probeMagic     = 0x58564c50 // "XVLP"
	probeVersion   = 1
	ProbeTypeProbe = uint8(bpfXvrrpProbeTypeXVRRP_PROBE)
	ProbeTypeReply = uint8(bpfXvrrpProbeTypeXVRRP_PROBE_REPLY)
)

// ProbePayload is the UDP payload of a probe for a VRID: its nonce is
// written by the kernel as the probe leaves.
func ProbePayload(vrid uint8, typ uint8, nonce uint64) []byte {
	b := make([]byte, ProbeLen)
	binary.BigEndian.PutUint32(b[0:], probeMagic)
	b[4], b[5], b[6] = probeVersion, typ, vrid
	binary.NativeEndian.PutUint64(b[8:], nonce)
	return b
}

// LivenessSpec is what a backup's kernel needs to count missed replies.
type LivenessSpec struct {
	Interval   time.Duration
	Multiplier int
	// Timeout is how long after a valid reply the kernel looks at the
	// probes left unanswered: Multiplier × Interval and a skew.
	Timeout time.Duration
}

// Liveness is a backup's liveness record for an instance.
type Liveness struct {
	Master     netip.Addr // the source of the adverts heard; invalid: none yet
	MAC        net.HardwareAddr
	Armed      bool // the master answered: missed replies count
	Sent       uint64
	Replies    uint64
	Unanswered uint64
	Lost       uint64 // LIVENESS_LOST events raised
	LostAt     time.Duration
	LastReply  time.Duration
	LastProbe  time.Duration
}

// SetLiveness writes an instance's liveness record afresh: no master, no
// nonce outstanding, the timer stopped.
func (d *Datapath) SetLiveness(k Key, s LivenessSpec) error {
	v := bpfXvrrpLiveness{IntervalNs: uint64(s.Interval), TimeoutNs: uint64(s.Timeout), Multiplier: uint32(s.Multiplier)}
	if err := d.objs.Liveness.Put(k.kernel(), v); err != nil {
		return fmt.Errorf("put liveness %+v: %w", k, err)
	}
	return nil
}

// ForgetLiveness removes an instance's liveness record, if any.
func (d *Datapath) ForgetLiveness(k Key) error {
	if err := d.objs.Liveness.Delete(k.kernel()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// LivenessOf reads an instance's liveness record; an error wrapping
// ebpf.ErrKeyNotExist when it has none.
func (d *Datapath) LivenessOf(k Key) (Liveness, error) {
	var v bpfXvrrpLiveness
	if err := d.objs.Liveness.Lookup(k.kernel(), &v); err != nil {
		return Liveness{}, err
	}
	l := Liveness{Armed: v.Armed != 0, Sent: v.Sent, Replies: v.Replies, Unanswered: v.Unanswered,
		Lost: v.Lost, LastReply: time.Duration(v.LastReplyNs), LastProbe: time.Duration(v.LastProbeNs), LostAt: time.Duration(v.LostNs)}
	var zero [6]byte
	if v.MasterMac != zero {
		l.Master = k.addrOf(v.Master)
		l.MAC = net.HardwareAddr(v.MasterMac[:])
	}
	return l, nil
}

// ProbePacket is an IPv4 probe (or reply) from src to dst: the IP header,
// UDP and the payload, as an AF_PACKET datagram socket sends it.
func ProbePacket(src, dst netip.Addr, vrid, typ uint8, nonce uint64) []byte {
	const ipLen, udpLen = 20, 8
	b := make([]byte, ipLen+udpLen+ProbeLen)
	b[0] = 0x45
	b[1] = 0xc0 // CS6, as adverts
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 255 // on the link only
	b[9] = 17  // UDP
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint16(b[10:], ipChecksum(b[:ipLen]))
	u := b[ipLen:]
	binary.BigEndian.PutUint16(u[0:], LivenessPort)
	binary.BigEndian.PutUint16(u[2:], LivenessPort)
	binary.BigEndian.PutUint16(u[4:], udpLen+ProbeLen)
	copy(u[udpLen:], ProbePayload(vrid, typ, nonce))
	return b
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
