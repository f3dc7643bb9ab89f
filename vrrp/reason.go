package vrrp

import (
	"errors"
	"fmt"
)

// Reason says why an advert was accepted or dropped. The numbering is shared with
// the XDP program (enum xvrrp_reason in bpf/xvrrp.h), which counts adverts in the
// stats map by Reason; loader tests hold the two lists together.
//
// Both the Go decoder (Classify) and the kernel apply the checks in one order, so
// a packet with several faults is counted under the same reason on both sides:
// IP version, IPv4 header length and checksum, IP length; the advert's length,
// version, type, TTL, checksum, address count, interval 0, unknown auth type;
// the source; then, against the instance: VRID (none: foreign), destination,
// own source, version, interval bounds, auth type, key, unicast peer.
//
// ReasonValid and ReasonForeign pass (Passes); every other reason is a drop.
type Reason uint32

const (
	ReasonValid       Reason = iota // advert accepted
	ReasonLength                    // shorter than its headers or than its IP length claims
	ReasonIPVersion                 // the IP header's version disagrees with the EtherType
	ReasonIPChecksum                // the IPv4 header checksum does not verify
	ReasonVersion                   // not version 2 or 3, or v2 over IPv6, or not the instance's version
	ReasonType                      // not an ADVERTISEMENT
	ReasonTTL                       // IPv4 TTL or IPv6 hop limit is not 255
	ReasonChecksum                  // VRRP checksum does not verify
	ReasonAddrCount                 // address count is 0 or disagrees with the length
	ReasonSource                    // source is not a unicast address (0/8, loopback, multicast, broadcast, ::)
	ReasonForeign                   // well formed, for a VRID not run on the interface: passed untouched
	ReasonDestination               // not sent to the instance's group, or (unicast) not to this host
	ReasonOwnSource                 // sent from the instance's own address or the interface's MAC
	ReasonInterval                  // interval 0, or outside what the instance accepts
	ReasonAuthType                  // v2 authentication type unknown or not the instance's
	ReasonAuthKey                   // v2 simple-password key does not match
	ReasonUnicastPeer               // source is not among the instance's unicast peers
	NumReasons                      // number of reasons; not a reason
)

var reasonNames = [NumReasons]string{
	ReasonValid:       "valid",
	ReasonLength:      "length",
	ReasonIPVersion:   "ip_version",
	ReasonIPChecksum:  "ip_checksum",
	ReasonVersion:     "version",
	ReasonType:        "type",
	ReasonTTL:         "ttl",
	ReasonChecksum:    "checksum",
	ReasonAddrCount:   "addr_count",
	ReasonSource:      "source",
	ReasonForeign:     "foreign",
	ReasonDestination: "destination",
	ReasonOwnSource:   "own_source",
	ReasonInterval:    "interval",
	ReasonAuthType:    "auth_type",
	ReasonAuthKey:     "auth_key",
	ReasonUnicastPeer: "unicast_peer",
}

// Passes says whether the kernel lets an advert counted under r go on to
// sockets: a valid one, or another router's (foreign).
func (r Reason) Passes() bool { return r == ReasonValid || r == ReasonForeign }

// String returns the short name used in logs, `xvrrp status` and the stats map dump.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// Sentinel errors, one per drop reason. Every error the decoder returns wraps one of
// them, so callers match with errors.Is and count with ReasonOf.
var (
	ErrLength      = &reasonError{ReasonLength}
	ErrVersion     = &reasonError{ReasonVersion}
	ErrType        = &reasonError{ReasonType}
	ErrTTL         = &reasonError{ReasonTTL}
	ErrChecksum    = &reasonError{ReasonChecksum}
	ErrAddrCount   = &reasonError{ReasonAddrCount}
	ErrIPVersion   = &reasonError{ReasonIPVersion}
	ErrIPChecksum  = &reasonError{ReasonIPChecksum}
	ErrSource      = &reasonError{ReasonSource}
	ErrForeign     = &reasonError{ReasonForeign}
	ErrDestination = &reasonError{ReasonDestination}
	ErrOwnSource   = &reasonError{ReasonOwnSource}
	ErrInterval    = &reasonError{ReasonInterval}
	ErrAuthType    = &reasonError{ReasonAuthType}
	ErrAuthKey     = &reasonError{ReasonAuthKey}
	ErrUnicastPeer = &reasonError{ReasonUnicastPeer}
)

type reasonError struct{ r Reason }

func (e *reasonError) Error() string { return "invalid advert: " + e.r.String() }

// ReasonOf returns the drop reason carried by err, ReasonValid for nil, and false
// when err does not come from this package's checks.
func ReasonOf(err error) (Reason, bool) {
	if err == nil {
		return ReasonValid, true
	}
	var re *reasonError
	if errors.As(err, &re) {
		return re.r, true
	}
	return 0, false
}

// invalid wraps a sentinel with detail for logs while keeping errors.Is working.
func invalid(sentinel *reasonError, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
