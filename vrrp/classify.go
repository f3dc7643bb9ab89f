package vrrp

// Classify judges an Ethernet frame the way the kernel's xdp_vrrp does, check for
// check and in the same order: DecodeFrame's checks, then the instance's (looked
// up by VRID and family; nil when there is none) with Accept.Check. It returns
// false for a frame that is not VRRP, which the kernel passes untouched.
func Classify(frame []byte, lookup func(vrid uint8, ipv6 bool) *Accept) (Reason, bool) {
	p, err := DecodeFrame(frame)
	if err == ErrNotVRRP {
		return 0, false
	}
	if err != nil {
		r, _ := ReasonOf(err)
		return r, true
	}
	acc := lookup(p.VRID, p.Src.Is6())
	if acc == nil {
		return ReasonUnknownVRID, true
	}
	r, _ := ReasonOf(acc.Check(&p.Advert, p.Src))
	return r, true
}
