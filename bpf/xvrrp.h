/* Shared between the XDP and TC programs and, through bpf2go -type, with Go.
 * Keep this the only definition of anything both sides use. */
#ifndef XVRRP_H
#define XVRRP_H

/* Why an advert was accepted, passed or dropped, in the order the checks run. The
 * Go decoder (vrrp.Reason) uses the same numbers and order; a test holds them
 * equal. VALID and FOREIGN pass; every other reason is a drop. */
enum xvrrp_reason {
	XVRRP_REASON_VALID = 0,
	XVRRP_REASON_LENGTH,
	XVRRP_REASON_IP_VERSION,   /* the IP version disagrees with the EtherType */
	XVRRP_REASON_IP_CHECKSUM,  /* the IPv4 header checksum does not verify */
	XVRRP_REASON_VERSION,
	XVRRP_REASON_TYPE,
	XVRRP_REASON_TTL,
	XVRRP_REASON_CHECKSUM,
	XVRRP_REASON_ADDR_COUNT,
	XVRRP_REASON_SOURCE,       /* not a unicast source: 0/8, loopback, multicast, broadcast */
	XVRRP_REASON_FOREIGN,      /* well formed, for a VRID we do not run here: passed */
	XVRRP_REASON_DESTINATION,  /* not the instance's group, or (unicast) not to us */
	XVRRP_REASON_OWN_SOURCE,   /* from our own address or MAC */
	XVRRP_REASON_INTERVAL,
	XVRRP_REASON_AUTH_TYPE,
	XVRRP_REASON_AUTH_KEY,
	XVRRP_REASON_UNICAST_PEER,
	XVRRP_REASON_MAX,
};

/* More counters after the reasons, in the stats map. */
enum xvrrp_counter {
	XVRRP_COUNTER_FENCED_INGRESS = XVRRP_REASON_MAX,
	XVRRP_COUNTER_FENCED_EGRESS,
	XVRRP_COUNTER_NO_ACCEPT,   /* to a VIP of a master in no_accept mode */
	/* Adverts XDP found valid (and counted) that tc then found tagged out
	 * of band: their VLAN's, not this interface's, so not recorded. */
	XVRRP_COUNTER_VLAN_TAGGED,
	/* fast_liveness (bpf/liveness.h): probes answered (a master), replies
	 * that held off a takeover (a backup), and what was dropped, by reason. */
	XVRRP_COUNTER_LIVENESS_ANSWERED,
	XVRRP_COUNTER_LIVENESS_REPLY,
	XVRRP_COUNTER_LIVENESS_MALFORMED,   /* bad IP/UDP header, length, TTL, version, type */
	XVRRP_COUNTER_LIVENESS_OFF,         /* a probe for no instance with fast_liveness */
	XVRRP_COUNTER_LIVENESS_DESTINATION, /* a probe not to the instance's MAC and address */
	XVRRP_COUNTER_LIVENESS_NO_LEASE,    /* a probe while not MASTER with a running lease */
	XVRRP_COUNTER_LIVENESS_UNSOLICITED, /* a reply for an instance that sends no probes */
	XVRRP_COUNTER_LIVENESS_FORGED,      /* a reply not from the master's MAC and address */
	XVRRP_COUNTER_LIVENESS_NONCE,       /* a reply echoing no outstanding probe's nonce */
	XVRRP_COUNTER_MAX,
};

enum xvrrp_state {
	XVRRP_STATE_INIT = 0,
	XVRRP_STATE_BACKUP,
	XVRRP_STATE_MASTER,
	XVRRP_STATE_FAULT,
};

enum xvrrp_family {
	XVRRP_FAMILY_IPV4 = 4,
	XVRRP_FAMILY_IPV6 = 6,
};

/* What an event says changed. */
enum xvrrp_event_kind {
	XVRRP_EVENT_NEW_SOURCE = 1,  /* an advert from another source than the last */
	XVRRP_EVENT_PRIORITY,        /* the peer's priority changed */
	XVRRP_EVENT_RESIGN,          /* priority 0: the master leaves */
	XVRRP_EVENT_CONTEST,         /* an advert reached us while we are master */
	XVRRP_EVENT_MASTER_DOWN,     /* a backup's Master_Down_Timer ran out in the kernel */
	XVRRP_EVENT_LIVENESS_LOST,   /* the master left multiplier probes unanswered */
};

/* Instance and peer key: a VRRP router is (interface, VRID, family). */
struct xvrrp_instance_key {
	__u32 ifindex;
	__u8 vrid;
	__u8 family;
	__u8 pad[2];
};

/* What the kernel checks adverts against, and the fence's state. */
struct xvrrp_instance {
	__u8 version;
	__u8 auth_type;
	__u8 state;          /* enum xvrrp_state */
	__u8 priority;       /* our effective priority, for CONTEST events */
	__u8 auth_data[8];   /* v2 simple password, NUL-padded */
	__u16 min_interval_cs; /* accepted advert intervals, centiseconds */
	__u16 max_interval_cs;
	__u32 flags;         /* XVRRP_F_* */
	__u64 lease_until_ns; /* CLOCK_MONOTONIC; the VIP passes the fence until then */
	/* When the daemon last renewed the lease (CLOCK_MONOTONIC). A master
	 * whose daemon has not renewed it for more than an interval is stalled:
	 * the first valid advert from another router ends its lease (let_go). */
	__u64 renewed_ns;
	/* The destination of a multicast instance's adverts (IPv4 in the first 4
	 * bytes); all zero means the standard group, 224.0.0.18 or ff02::12. */
	__u8 group[16];
	/* The address this instance sends its adverts from: an advert from it is
	 * our own, reflected or forged. All zero: not checked. */
	__u8 local[16];
	/* The interface's MAC. A unicast advert must be sent to it, and no advert
	 * may come from it. All zero: neither is checked. */
	__u8 mac[6];
	__u16 interval_cs;   /* our own advert interval: how often the lease is renewed */
};

/* Flags of an instance (xvrrp_instance.flags), exported to Go with bpf2go's
 * -type so that loader/ never copies their values by hand. */
enum xvrrp_flag {
	XVRRP_F_UNICAST = 1 << 0,   /* check the source against unicast_peers */
	XVRRP_F_NO_ACCEPT = 1 << 1, /* no_accept: a master drops traffic to its
				     * VIPs, but answers ARP and neighbour
				     * discovery */
	XVRRP_F_RECORD_IN_XDP = 1 << 2, /* record valid adverts in XDP rather
					 * than hand them to tc_fence_ingress:
					 * for prog.Run tests, which run XDP
					 * alone */
	XVRRP_F_HANDING_OVER = 1 << 3, /* a master stepping down (stop, sync
					* group): the next valid advert from
					* another router ends its lease, the
					* incoming master's first */
	XVRRP_F_V3_CHECKSUM_AS_V2 = 1 << 4, /* keepalived's v3_checksum_as_v2
					     * (FRR: no checksum-with-ipv4-
					     * pseudoheader): a VRRPv3 IPv4
					     * advert's checksum covers the
					     * message alone, and only that form
					     * is accepted */
	XVRRP_F_LIVENESS = 1 << 5, /* fast_liveness: a master answers probes */
};

/* The last valid advert heard for an instance. The kernel rewrites it field by
 * field while the agent reads it: the writer holds lock, and readers look it up
 * with BPF_F_LOCK, so a read is one advert, never one's time and another's
 * priority. */
struct xvrrp_peer {
	__u8 addr[16];       /* IPv4 in the first 4 bytes */
	__u8 priority;
	__u8 version;
	__u16 interval_cs;
	struct bpf_spin_lock lock;
	__u64 last_seen_ns;  /* bpf_ktime_get_ns() when the advert arrived */
	__u64 count;
};

/* One instance's counters, per CPU, in the instance_stats map; bpftool prints
 * them by name. The first XVRRP_REASON_MAX count the instance's adverts by enum
 * xvrrp_reason, in its order, so that a reason indexes them; drops count from
 * the first check that can read the VRID. valid, ip_version and ip_checksum
 * never count here: the adverts recorded as the instance's are the count of
 * its struct xvrrp_peer, which the valid path updates anyway, and the others
 * have no instance. foreign counts only under an interface's key with VRID 0:
 * other routers' adverts on that interface. */
struct xvrrp_instance_stats {
	__u64 valid;
	__u64 length;
	__u64 ip_version;
	__u64 ip_checksum;
	__u64 version;
	__u64 type;
	__u64 ttl;
	__u64 checksum;
	__u64 addr_count;
	__u64 source;
	__u64 foreign;
	__u64 destination;
	__u64 own_source;
	__u64 interval;
	__u64 auth_type;
	__u64 auth_key;
	__u64 unicast_peer;
	/* Of auth_type, those whose type is neither 0 nor 1 (keepalived's
	 * invalid_authtype); the rest are a mismatch (authtype_mismatch). */
	__u64 unknown_auth_type;
	__u64 pri_zero;       /* of the adverts recorded, those with priority 0 */
	__u64 fenced_ingress; /* packets the fence dropped for the instance's VIPs */
	__u64 fenced_egress;
	__u64 no_accept;
};
_Static_assert(__builtin_offsetof(struct xvrrp_instance_stats, unicast_peer) ==
		       XVRRP_REASON_UNICAST_PEER * sizeof(__u64),
	       "the reasons index struct xvrrp_instance_stats");

struct xvrrp_vip_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct xvrrp_unicast_key {
	struct xvrrp_instance_key instance;
	__u8 addr[16];
};

/* A unicast peer's entry: the TTL or hop limit its adverts must arrive with
 * (keepalived's unicast_peer { ADDR min_ttl N max_ttl M }; 0 to 255 when not
 * given). */
struct xvrrp_unicast_peer {
	__u8 min_ttl;
	__u8 max_ttl;
};

/* How an instance compares the addresses an advert carries with its own
 * virtual_ipaddress list, as keepalived does (its addr_list_err): the same
 * count, each one of ours (advert_addrs). An instance without an entry in
 * advert_checks is not checked. */
struct xvrrp_advert_check {
	__u8 naddr;           /* how many addresses an advert must carry */
	/* skip_check_adv_addr: a backup checks only a new master's adverts, not
	 * those from the source it last accepted. */
	__u8 skip_same_master;
};

struct xvrrp_event {
	struct xvrrp_instance_key key;
	__u32 kind;          /* enum xvrrp_event_kind */
	__u8 addr[16];
	__u8 priority;
	__u8 prev_priority;
	__u16 interval_cs;
	__u32 pad;
	__u64 time_ns;
};

/* A backup's Master_Down_Timer, run by the kernel (down_timers map, keyed like
 * instances). The daemon writes an entry for an instance whose timer the
 * kernel can run exactly as vrrp.Machine would (no preempt_delay); writing it
 * cancels a running timer. The kernel's fields it leaves zero. */
struct xvrrp_down_timer {
	struct bpf_timer timer;
	__u8 down_adverts;    /* daemon: down_timer_adverts, 1–100 (0: 3) */
	__u8 flags;           /* daemon: XVRRP_DOWN_* */
	__u8 ready;           /* kernel: timer initialised, callback set */
	__u8 pad;
	__u32 init_errors;    /* kernel: bpf_timer_init failures, retried */
	__u64 heard_ns;       /* kernel: the advert that armed it (CLOCK_MONOTONIC) */
	__u64 interval_ns;    /* kernel: Master_Adver_Interval it was armed with */
	__u64 due_ns;         /* kernel: when it runs out */
	__u64 fired;          /* kernel: MASTER_DOWN events pushed */
};

enum xvrrp_down_flag {
	XVRRP_DOWN_NO_PREEMPT = 1 << 0, /* nopreempt: every advert holds us off */
};

#endif /* XVRRP_H */
