/* Shared between the XDP and TC programs and, through bpf2go -type, with Go.
 * Keep this the only definition of anything both sides use. */
#ifndef XVRRP_H
#define XVRRP_H

/* Why an advert was accepted or dropped, in the order the checks run. The Go
 * decoder (vrrp.Reason) uses the same numbers and order; a test holds them equal. */
enum xvrrp_reason {
	XVRRP_REASON_VALID = 0,
	XVRRP_REASON_LENGTH,
	XVRRP_REASON_VERSION,
	XVRRP_REASON_TYPE,
	XVRRP_REASON_TTL,
	XVRRP_REASON_CHECKSUM,
	XVRRP_REASON_ADDR_COUNT,
	XVRRP_REASON_UNKNOWN_VRID,
	XVRRP_REASON_INTERVAL,
	XVRRP_REASON_AUTH_TYPE,
	XVRRP_REASON_AUTH_KEY,
	XVRRP_REASON_UNICAST_PEER,
	XVRRP_REASON_MAX,
};

#endif /* XVRRP_H */
