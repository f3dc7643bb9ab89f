//go:build ignore

// xdp_vrrp validates, counts and time-stamps VRRP adverts; tc_fence_ingress and
// tc_fence_egress keep a node that is not master (or whose lease ran out) from
// receiving or sending VIP traffic. docs/architecture.md tells how they work
// together with the agent, and why.

#include "../vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xvrrp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_VRRP 112
#define IPPROTO_ICMPV6 58
#define ICMPV6_NA 136
#define TC_ACT_SHOT 2
/* "No verdict". TCX runs the next program in the chain (TCX_NEXT, -1); a
 * direct-action cls_bpf filter returning TC_ACT_UNSPEC (the same -1) lets the
 * next filter classify (cls_bpf_exec_opcode keeps it, tcf_classify moves on);
 * when none is left either way, the packet goes on as with TC_ACT_OK. TC_ACT_OK
 * would end the chain: a program attached after the fence would never run. */
#define TC_ACT_UNSPEC (-1)
_Static_assert(TC_ACT_UNSPEC == TCX_NEXT, "TCX_NEXT and TC_ACT_UNSPEC differ");

/* barrier_var (bpf_helpers.h) keeps clang from folding a constant into data_end
 * in bounds checks, which the verifier refuses. */

#define VRRP_HDR 8
#define VRRP_AUTH 8
/* The longest advert: v3 over IPv6 with 255 addresses. */
#define VRRP_MAX_WORDS ((VRRP_HDR + 255 * 16) / 4) /* 32-bit */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_instance);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} instances SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct xvrrp_vip_key);
	__type(value, struct xvrrp_instance_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct xvrrp_unicast_key);
	__type(value, struct xvrrp_unicast_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} unicast_peers SEC(".maps");

/* The instance's virtual addresses an advert must carry, and how it checks
 * them (advert_addrs_ok). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_advert_check);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} advert_checks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct xvrrp_unicast_key); /* (instance, address) */
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} advert_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVRRP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* Per instance, by the instance's key; see instance_counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_instance_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} instance_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* Exported to Go through bpf2go -type. */
const struct xvrrp_event *unused_event __attribute__((unused));
const enum xvrrp_reason *unused_reason __attribute__((unused));
const enum xvrrp_counter *unused_counter __attribute__((unused));
const enum xvrrp_state *unused_state __attribute__((unused));
const enum xvrrp_event_kind *unused_event_kind __attribute__((unused));
const enum xvrrp_family *unused_family __attribute__((unused));
const enum xvrrp_flag *unused_flag __attribute__((unused));
const struct xvrrp_unicast_key *unused_unicast_key __attribute__((unused));
const struct xvrrp_unicast_peer *unused_unicast_peer __attribute__((unused));
const struct xvrrp_advert_check *unused_advert_check __attribute__((unused));
const struct xvrrp_vip_key *unused_vip_key __attribute__((unused));
const struct xvrrp_instance_stats *unused_instance_stats __attribute__((unused));

struct vlan {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &counter);
	if (v)
		*v += 1;
}

static __always_inline int drop(__u32 reason)
{
	count(reason);
	return XDP_DROP;
}

/* Read-only zeroes for a new entry of instance_stats: a struct on the stack
 * would cost the advert path 176 of its 512 bytes. */
static const struct xvrrp_instance_stats zero_stats;

/* instance_counters returns this CPU's counters of an instance, made on its
 * first event; NULL for a key the instances map has not, so that adverts for
 * VRIDs no instance runs cannot fill the map. An entry outlives its instance
 * only until loader.Forget. */
static __always_inline struct xvrrp_instance_stats *instance_counters(const struct xvrrp_instance_key *key)
{
	struct xvrrp_instance_stats *s = bpf_map_lookup_elem(&instance_stats, key);
	if (s)
		return s;
	if (!bpf_map_lookup_elem(&instances, key))
		return NULL;
	bpf_map_update_elem(&instance_stats, key, &zero_stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(&instance_stats, key);
}

/* count_for counts an advert for an instance under its reason. VRID 0 is no
 * instance's: its key holds the interface's foreign adverts (count_foreign). */
static __always_inline struct xvrrp_instance_stats *count_for(const struct xvrrp_instance_key *key, __u32 reason)
{
	if (key->vrid == 0)
		return NULL;
	struct xvrrp_instance_stats *s = instance_counters(key);
	if (s && reason < XVRRP_REASON_MAX)
		((__u64 *)s)[reason] += 1;
	return s;
}

/* count_foreign counts another router's advert on the interface, under the
 * interface's key with VRID 0, which no VRRP router has. Made on the first,
 * whatever the instances: one entry per interface and family xdp_vrrp runs on. */
static __always_inline void count_foreign(struct xvrrp_instance_key key)
{
	key.vrid = 0;
	struct xvrrp_instance_stats *s = bpf_map_lookup_elem(&instance_stats, &key);
	if (!s) {
		bpf_map_update_elem(&instance_stats, &key, &zero_stats, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&instance_stats, &key);
	}
	if (s)
		s->foreign++;
}

/* drop_advert drops an advert for a reason, counted for the instance too once
 * the VRID can be read. */
static __always_inline int drop_advert(struct xdp_md *ctx, const __u8 *v, void *end, __u8 family, __u32 reason)
{
	if ((void *)(v + 2) <= end) {
		struct xvrrp_instance_key key = {
			.ifindex = ctx->ingress_ifindex,
			.vrid = v[1],
			.family = family,
		};
		struct xvrrp_instance_stats *s = count_for(&key, reason);
		if (s && reason == XVRRP_REASON_AUTH_TYPE && v + 5 <= (__u8 *)end && v[4] > 1)
			s->unknown_auth_type++;
	}
	return drop(reason);
}

static __always_inline int vlan_proto(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Parses Ethernet and up to two VLAN tags (802.1Q or 802.1ad); returns the L3
 * header or NULL. For the fence only: a tagged packet to or from a VIP is still
 * VIP traffic, whatever its tags. */
static __always_inline void *l3(void *data, void *end, __be16 *proto)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return NULL;
	*proto = eth->h_proto;
	void *p = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (!vlan_proto(*proto))
			break;
		struct vlan *v = p;
		if ((void *)(v + 1) > end)
			return NULL;
		*proto = v->proto;
		p = v + 1;
	}
	return p;
}

/* differ compares n bytes; clang has no memcmp for BPF. */
static __always_inline int differ(const __u8 *a, const __u8 *b, const int n)
{
	__u8 d = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d != 0;
}

/* sum32 adds n 32-bit words in memory order; summed and folded, 32-bit words
 * give the same one's complement sum as 16-bit words, in half the steps. */
static __always_inline __u64 sum32(const void *p, const int n)
{
	__u64 s = 0;
	const __u32 *w = p;
#pragma unroll
	for (int i = 0; i < n; i++)
		s += w[i];
	return s;
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* addr16 copies a source address into a 16-byte field, zero-padding IPv4. */
static __always_inline void addr16(__u8 *to, const __u8 *from, __u8 family)
{
	if (family == XVRRP_FAMILY_IPV4) {
		__builtin_memset(to, 0, 16);
		__builtin_memcpy(to, from, 4);
	} else {
		__builtin_memcpy(to, from, 16);
	}
}

/* zero16 says whether a 16-byte field of a map value is all zero. */
static __always_inline int zero16(const __u8 *a)
{
	const __u64 *w = (const __u64 *)a;
	return (w[0] | w[1]) == 0;
}

static __always_inline int zero_mac(const __u8 *a)
{
	return (*(const __u32 *)a | *(const __u16 *)(a + 4)) == 0;
}

/* unicast_source says whether src may send an advert at all. The kernel's routing
 * drops these sources as martians (IPv4: 0/8, 127/8, multicast, class E and
 * broadcast; IPv6: ::, ::1, multicast) before a raw socket could see them, and
 * RFC 5798 has the source be the sender's own unicast address. */
static __always_inline int unicast_source(const __u8 *src, __u8 family)
{
	if (family == XVRRP_FAMILY_IPV4)
		return src[0] != 0 && src[0] != 127 && src[0] < 224;
	if (src[0] == 0xff)
		return 0;
	/* :: and ::1. The address is only 2-byte aligned in the frame. */
	const __u16 *w = (const __u16 *)src;
	__u16 hi = 0;
#pragma unroll
	for (int i = 0; i < 7; i++)
		hi |= w[i];
	return hi != 0 || (w[7] & bpf_htons(0xfffe)) != 0;
}

/* to_us says whether an advert was sent where the instance listens. A multicast
 * instance listens on its group (vrrp_mcast_group4/6, mcast_dst_ip, or the
 * standard one). A unicast instance listens on this host's addresses, and XDP
 * runs before the kernel knows whether an address is local: there is no
 * PACKET_HOST yet; bpf_fib_lookup would say RTN_LOCAL as NOT_FWDED but answers
 * FWD_DISABLED on an interface that does not forward, as VRRP hosts often do
 * not; a map of local addresses would need the agent to mirror every address
 * change, and be wrong in between. So "to us" is the kernel's own L2 rule: a
 * unicast IP destination in a frame sent to this interface's MAC. A frame for
 * another host's MAC is what the kernel marks PACKET_OTHERHOST and never
 * delivers. A frame to our MAC for another host's IP passes this check (the
 * kernel would forward or drop it); the unicast peer list still applies. */
static __always_inline int to_us(const struct xvrrp_instance *inst, const struct ethhdr *eth,
				 const __u8 *dst, __u8 family)
{
	if (inst->flags & XVRRP_F_UNICAST) {
		if (family == XVRRP_FAMILY_IPV4 ? dst[0] >= 224 : dst[0] == 0xff)
			return 0;
		return zero_mac(inst->mac) || !differ(eth->h_dest, inst->mac, 6);
	}
	if (!zero16(inst->group))
		return family == XVRRP_FAMILY_IPV4 ? !differ(dst, inst->group, 4)
						   : !differ(dst, inst->group, 16);
	if (family == XVRRP_FAMILY_IPV4)
		return dst[0] == 224 && dst[1] == 0 && dst[2] == 0 && dst[3] == 18;
	/* ff02::12 */
	const __u16 *w = (const __u16 *)dst;
	__u16 mid = 0;
#pragma unroll
	for (int i = 1; i < 7; i++)
		mid |= w[i];
	return w[0] == bpf_htons(0xff02) && mid == 0 && w[7] == bpf_htons(0x12);
}

/* own_source says whether an advert comes from this instance itself: from the
 * address it sends from, or from this interface's MAC (a reflection, or a
 * forgery in our name). */
static __always_inline int own_source(const struct xvrrp_instance *inst, const struct ethhdr *eth,
				      const __u8 *src, __u8 family)
{
	if (!zero_mac(inst->mac) && !differ(eth->h_source, inst->mac, 6))
		return 1;
	if (zero16(inst->local))
		return 0;
	return family == XVRRP_FAMILY_IPV4 ? !differ(src, inst->local, 4) : !differ(src, inst->local, 16);
}

/* remember keeps a valid advert as the peer's latest, time-stamped now (by
 * XDP), and returns what the state machine must hear of (0: nothing), with the
 * priority heard before in prev. */
static __always_inline __u32 remember(const struct xvrrp_instance_key *key,
				      const struct xvrrp_instance *inst, const __u8 *addr, __u8 prio,
				      __u8 version, __u16 interval_cs, __u64 now, __u8 *prev)
{
	__u32 kind = 0;
	struct xvrrp_peer *p = bpf_map_lookup_elem(&peers, key);
	if (!p) {
		struct xvrrp_peer fresh = {
			.priority = prio,
			.version = version,
			.interval_cs = interval_cs,
			.last_seen_ns = now,
			.count = 1,
		};
		__builtin_memcpy(fresh.addr, addr, 16);
		bpf_map_update_elem(&peers, key, &fresh, BPF_ANY);
		kind = XVRRP_EVENT_NEW_SOURCE;
	} else {
		/* Whole adverts only, for readers (BPF_F_LOCK) and for another CPU
		 * recording at once. No helper may be called while the lock is
		 * held: now was read before. */
		bpf_spin_lock(&p->lock);
		*prev = p->priority;
		if (differ(p->addr, addr, 16)) {
			kind = XVRRP_EVENT_NEW_SOURCE;
			__builtin_memcpy(p->addr, addr, 16);
		} else if (prio != *prev) {
			kind = XVRRP_EVENT_PRIORITY;
		}
		p->priority = prio;
		p->version = version;
		p->interval_cs = interval_cs;
		p->last_seen_ns = now;
		p->count++;
		bpf_spin_unlock(&p->lock);
	}
	if (prio == 0)
		kind = XVRRP_EVENT_RESIGN;
	else if (inst->state == XVRRP_STATE_MASTER)
		kind = XVRRP_EVENT_CONTEST;
	return kind;
}

/* announce tells the agent through the ring buffer what remember found. */
static __always_inline void announce(const struct xvrrp_instance_key *key, __u32 kind,
				     const __u8 *addr, __u8 prio, __u8 prev, __u16 interval_cs,
				     __u64 now)
{
	struct xvrrp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->key = *key;
	e->kind = kind;
	__builtin_memcpy(e->addr, addr, 16);
	e->priority = prio;
	e->prev_priority = prev;
	e->interval_cs = interval_cs;
	e->pad = 0;
	e->time_ns = now;
	bpf_ringbuf_submit(e, 0);
}

/* beats says whether an advert from addr with priority prio wins over ours
 * (RFC 5798 6.4.3, vrrp.Machine's beats): a higher priority, or an equal one
 * from a higher address. Without our address (local all zero) a tie is ours. */
static __always_inline int beats(const struct xvrrp_instance *inst, const __u8 *addr, __u8 prio)
{
	if (prio != inst->priority)
		return prio > inst->priority;
	if (zero16(inst->local))
		return 0;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (addr[i] != inst->local[i])
			return addr[i] > inst->local[i];
	}
	return 0;
}

/* let_go ends a master's lease the moment another master announces itself,
 * rather than when our daemon reacts: the overlap of two masters is then the
 * advert's flight, and the outgoing one answers until then. It lets go on a
 * valid advert of non-zero priority from another router (instance_checks
 * refused our own) when
 * - the instance is handing over (the daemon stops or steps down and waits
 *   for its successor: make-before-break);
 * - the advert beats ours: RFC 5798 has a master step down on it, and the
 *   daemon would a little later;
 * - the daemon has not renewed the lease for more than an interval: it is
 *   frozen or dead, and whoever advertises took over from it. A live master
 *   renews every interval; one that misses by more and hears a contest in that
 *   instant loses its lease until its next renewal restores it.
 * The daemon learns of it from the CONTEST event and from the instance. */
static __always_inline void let_go(struct xvrrp_instance *inst, const __u8 *addr, __u8 prio,
				   __u64 now)
{
	if (inst->state != XVRRP_STATE_MASTER || prio == 0)
		return;
	__u64 interval = (__u64)inst->interval_cs * 10000000;
	int stalled = interval != 0 && now > inst->renewed_ns + interval;
	if (!(inst->flags & XVRRP_F_HANDING_OVER) && !stalled && !beats(inst, addr, prio))
		return;
	inst->state = XVRRP_STATE_BACKUP;
	inst->lease_until_ns = 0;
}

/* ---- Master_Down timers in the kernel (docs/architecture.md, "A backup that
 * sleeps"). A backup's Master_Down_Timer is a bpf_timer, re-armed here at each
 * valid advert that holds the backup off, as vrrp.Machine restarts it; only
 * when it runs out does the daemon hear of it (MASTER_DOWN), and it decides
 * then on the kernel's record of the last advert, as before. An instance
 * without an entry (preempt_delay) keeps its timer in the daemon. */

#define CLOCK_MONOTONIC 1
#define EBUSY 16
#define NSEC_PER_CS 10000000ULL
#define NSEC_PER_SEC 1000000000ULL

/* Pinned like the others: the pin holds a user reference, so the timers keep
 * running while the daemon restarts (the kernel cancels a map's timers when
 * its last user reference goes). A restarted daemon writes every entry again,
 * which cancels what ran, and times its backups itself until the next advert
 * re-arms them here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_down_timer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} down_timers SEC(".maps");

const struct xvrrp_down_timer *unused_down_timer __attribute__((unused));
const enum xvrrp_down_flag *unused_down_flag __attribute__((unused));

/* master_down_ns is RFC 5798's Master_Down_Interval as vrrp.MasterDownInterval
 * computes it: adverts master intervals plus Skew_Time, (256 - priority) / 256
 * of the master's interval (v3) or of a second (v2), truncated to the
 * nanosecond. A test runs it against the Go function for every interval,
 * priority and down_timer_adverts a configuration allows. */
static __always_inline __u64 master_down_ns(__u8 version, __u8 priority, __u64 interval_ns, __u8 adverts)
{
	if (adverts == 0)
		adverts = 3;
	__u64 base = version == 2 ? NSEC_PER_SEC : interval_ns;
	return (__u64)adverts * interval_ns + (256 - (__u64)priority) * base / 256;
}

/* holds_off is vrrp.Machine's accepts for a backup without preempt_delay: an
 * advert of non-zero priority restarts the Master_Down_Timer when it is at
 * least ours, or we do not preempt. Priority 0 (a resignation) the daemon
 * hears of as RESIGN and times itself (Skew_Time). */
static __always_inline int holds_off(const struct xvrrp_instance *inst, const struct xvrrp_down_timer *t,
				     __u8 prio)
{
	if (inst->state != XVRRP_STATE_BACKUP || prio == 0)
		return 0;
	return (t->flags & XVRRP_DOWN_NO_PREEMPT) || prio >= inst->priority;
}

/* master_down_fired runs when a backup's Master_Down_Timer runs out: it tells
 * the daemon, which reads the last advert and decides — and applies the rule
 * for a host that was stalled (vrrp.StallGrace) in one place, so a callback
 * that runs late after a stall is graced there, once. A full ring buffer is
 * tried again a master interval later. */
static int master_down_fired(void *map, struct xvrrp_instance_key *key, struct xvrrp_down_timer *t)
{
	struct xvrrp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bpf_timer_start(&t->timer, t->interval_ns ? t->interval_ns : NSEC_PER_CS, 0);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->key = *key;
	e->kind = XVRRP_EVENT_MASTER_DOWN;
	e->time_ns = t->due_ns;
	bpf_ringbuf_submit(e, 0);
	t->fired++;
	return 0;
}

/* hold_off restarts an instance's Master_Down_Timer in the kernel for a valid
 * advert heard at now (XDP's time stamp), when the advert holds the backup
 * off: it runs out Master_Down_Interval after the advert, with the master's
 * interval (v3; ours in v2) and our effective priority. */
static __always_inline void hold_off(const struct xvrrp_instance_key *key, const struct xvrrp_instance *inst,
				     __u8 prio, __u16 interval_cs, __u64 now)
{
	struct xvrrp_down_timer *t = bpf_map_lookup_elem(&down_timers, key);
	if (!t || !holds_off(inst, t, prio))
		return;
	if (!t->ready) {
		/* The only step that can fail: bpf_timer_init allocates, and
		 * may find no memory in this context (ENOMEM, seen here under
		 * prog.Run). Then the timer stays unarmed, which the daemon
		 * sees (heard_ns), and the next advert tries again. Armed once,
		 * re-arming allocates nothing. */
		long err = bpf_timer_init(&t->timer, &down_timers, CLOCK_MONOTONIC);
		if ((err && err != -EBUSY) || bpf_timer_set_callback(&t->timer, master_down_fired)) {
			t->init_errors++;
			return;
		}
		t->ready = 1;
	}
	__u64 interval = (__u64)(inst->version == 2 ? inst->interval_cs : interval_cs) * NSEC_PER_CS;
	t->interval_ns = interval;
	t->heard_ns = now;
	t->due_ns = now + master_down_ns(inst->version, inst->priority, interval, t->down_adverts);
	bpf_timer_start(&t->timer, t->due_ns, BPF_F_TIMER_ABS);
}

/* ---- end of the kernel's Master_Down timers. */

/* record keeps a valid advert, tells the agent when something it must react
 * to changed, and ends a master's lease when the advert says it must end. */
static __always_inline void record(const struct xvrrp_instance_key *key,
				   struct xvrrp_instance *inst, const __u8 *addr, __u8 prio,
				   __u8 version, __u16 interval_cs, __u64 now)
{
	__u8 prev = 0;
	/* The peer's count is advert_rcvd: the valid path pays for no other
	 * counter. */
	if (prio == 0) {
		struct xvrrp_instance_stats *s = instance_counters(key);
		if (s)
			s->pri_zero++;
	}
	__u32 kind = remember(key, inst, addr, prio, version, interval_cs, now, &prev);
	if (kind)
		announce(key, kind, addr, prio, prev, interval_cs, now);
	let_go(inst, addr, prio, now);
	hold_off(key, inst, prio, interval_cs, now);
}

/* A valid advert, as xdp_vrrp hands it to tc_fence_ingress in the XDP metadata
 * area in front of the frame (at most 32 bytes). XDP cannot tell a frame whose
 * VLAN tag the driver keeps out of band (hardware VLAN stripping; a veth fed by
 * a bridge) from an untagged one: the tag is not in the frame, and only a
 * device-bound program could ask for it (bpf_xdp_metadata_rx_vlan_tag), which
 * generic XDP and VLAN devices do not allow. tc sees it in skb->vlan_tci. So
 * XDP judges and time-stamps, tc records, unless the frame was tagged.
 * Metadata comes only from XDP, never from the wire. */
struct handoff {
	__u32 magic;
	struct xvrrp_instance_key key;
	__u64 time_ns;
	__u8 priority;
	__u8 version;
	__u16 interval_cs;
	__u32 pad;
};
#define HANDOFF_MAGIC 0x78767270 /* "xvrp" */
_Static_assert(sizeof(struct handoff) <= 32, "XDP metadata holds 32 bytes at most");

/* commit records the advert xdp_vrrp handed over with this packet, if any; the
 * common case, no metadata, costs one comparison. data and end are the
 * caller's: nothing here moves the packet, so they stay valid after it. */
static __always_inline void commit(struct __sk_buff *skb, void *data, void *end)
{
	struct handoff *h = (void *)(long)skb->data_meta;
	if ((void *)(h + 1) > data || h->magic != HANDOFF_MAGIC)
		return;
	/* Once only: a VLAN device's tc ingress sees the same skb after ours. */
	h->magic = 0;
	struct xvrrp_instance_key key = h->key;
	if (key.ifindex != skb->ifindex)
		return;
	if (skb->vlan_present) {
		/* Tagged out of band: the frame is its VLAN's, and what XDP
		 * judged against this interface's instances was not theirs. */
		count(XVRRP_COUNTER_VLAN_TAGGED);
		return;
	}
	/* Untagged, so the IP header follows Ethernet as XDP saw it. */
	__u8 addr[16];
	if (key.family == XVRRP_FAMILY_IPV4) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		if ((void *)(ip + 1) > end)
			return;
		addr16(addr, (__u8 *)&ip->saddr, XVRRP_FAMILY_IPV4);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > end)
			return;
		addr16(addr, (__u8 *)&ip6->saddr, XVRRP_FAMILY_IPV6);
	}
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, &key);
	if (!inst)
		return;
	record(&key, inst, addr, h->priority, h->version, h->interval_cs, h->time_ns);
}

/* header_checks: the fixed header (length, version, type) and the TTL or hop
 * limit, which need neither the rest of the message nor an instance. */
static __always_inline int header_checks(const __u8 *v, __u32 plen, void *end, __u8 family, __u8 ttl)
{
	if (plen < VRRP_HDR || (void *)(v + VRRP_HDR) > end)
		return XVRRP_REASON_LENGTH;
	__u8 version = v[0] >> 4;
	if ((version != 2 && version != 3) || (version == 2 && family != XVRRP_FAMILY_IPV4))
		return XVRRP_REASON_VERSION;
	if ((v[0] & 0x0f) != 1)
		return XVRRP_REASON_TYPE;
	if (ttl != 255)
		return XVRRP_REASON_TTL;
	return XVRRP_REASON_VALID;
}

/* Which checksum form a VRRPv3 IPv4 advert must carry (checksum_form). */
enum sum_form {
	SUM_PSEUDO = 0,  /* with the pseudo-header: RFC 5798 as keepalived reads it */
	SUM_MESSAGE,     /* the message alone: v3_checksum_as_v2 */
	SUM_EITHER,      /* no instance here: another router's, well formed either way */
};

/* checksum_form says which form a VRRPv3 IPv4 advert must carry: its
 * instance's, or, with none, either (the advert is another router's, and the
 * routers of that VRID may use either). keepalived with v3_checksum_as_v2
 * accepts only that form, and without it only the pseudo-header one. inst is
 * the advert's instance, looked up once by advert(). */
static __always_inline int checksum_form(const struct xvrrp_instance *inst)
{
	if (!inst)
		return SUM_EITHER;
	return inst->flags & XVRRP_F_V3_CHECKSUM_AS_V2 ? SUM_MESSAGE : SUM_PSEUDO;
}

/* checksum verifies the VRRP checksum: over the message alone (v2), or with
 * the pseudo-header (v3), or for v3 over IPv4 alone when the instance says so
 * (checksum_form). The sum of 16-bit words in memory order folds to 0xffff in
 * either byte order. */
static __always_inline int checksum(const struct xvrrp_instance *inst, const __u8 *v, __u32 plen,
				    void *end, __u8 family, const __u8 *src, const __u8 *dst)
{
	__u64 sum = 0, pseudo = 0;
	int form = SUM_PSEUDO;
	if (v[0] >> 4 == 3) {
		if (family == XVRRP_FAMILY_IPV4) {
			pseudo = sum32(src, 1) + sum32(dst, 1);
			form = checksum_form(inst);
		} else {
			pseudo = sum32(src, 4) + sum32(dst, 4);
		}
		pseudo += bpf_htons(IPPROTO_VRRP) + bpf_htons((__u16)plen);
	}
	__u32 words = plen / 4;
	for (__u32 i = 0; i < VRRP_MAX_WORDS; i++) {
		if (i >= words)
			break;
		__u32 *w = (__u32 *)(v + i * 4);
		void *next = w + 1;
		barrier_var(next);
		if (next > end)
			return XVRRP_REASON_LENGTH;
		sum += *w;
	}
	if (plen & 2) {
		__u16 *w = (__u16 *)(v + (plen & 0x1ffc));
		void *next = w + 1;
		barrier_var(next);
		if (next > end)
			return XVRRP_REASON_LENGTH;
		sum += *w;
	}
	if (plen & 1) {
		__u8 *last = (__u8 *)v + (plen & 0x1fff) - 1;
		void *next = last + 1;
		barrier_var(next);
		if (next > end)
			return XVRRP_REASON_LENGTH;
		sum += *last;
	}
	/* v2 has no pseudo-header: pseudo is 0 and the forms agree. */
	int with = fold(sum + pseudo) == 0xffff;
	int alone = fold(sum) == 0xffff;
	if (form == SUM_MESSAGE ? alone : form == SUM_EITHER ? with || alone : with)
		return XVRRP_REASON_VALID;
	return XVRRP_REASON_CHECKSUM;
}

/* message_checks: what the rest of the message must say whichever instance it
 * is for (address count, interval, v2 authentication type, a unicast source);
 * sets the advertised interval. */
static __always_inline int message_checks(const __u8 *v, __u32 plen, __u8 family, const __u8 *src,
					  __u16 *interval_cs)
{
	__u8 version = v[0] >> 4;
	__u32 naddr = v[3];
	__u32 want = VRRP_HDR + naddr * (family == XVRRP_FAMILY_IPV4 ? 4 : 16) +
		     (version == 2 ? VRRP_AUTH : 0);
	if (naddr == 0 || plen != want)
		return XVRRP_REASON_ADDR_COUNT;
	*interval_cs = version == 2 ? (__u16)v[5] * 100 : ((__u16)(v[4] & 0x0f) << 8) | v[5];
	if (*interval_cs == 0)
		return XVRRP_REASON_INTERVAL;
	if (version == 2 && v[4] > 1)
		return XVRRP_REASON_AUTH_TYPE;
	if (!unicast_source(src, family))
		return XVRRP_REASON_SOURCE;
	return XVRRP_REASON_VALID;
}

/* advert_addrs_ok: an advert carries the instance's virtual addresses, as
 * keepalived's vrrp_check_packet wants unless told to skip (its addr_list_err,
 * counted here as addr_count): as many as ours, each one of ours. With
 * skip_check_adv_addr a backup checks only adverts from another source than
 * the master it last accepted (the peers entry); a master checks every one.
 * message_checks found the address count consistent with the length. */
static __always_inline int advert_addrs_ok(const struct xvrrp_instance_key *key,
					   const struct xvrrp_instance *inst, const __u8 *v,
					   void *end, __u8 family, const __u8 *src)
{
	struct xvrrp_advert_check *c = bpf_map_lookup_elem(&advert_checks, key);
	if (!c)
		return 1;
	if (c->skip_same_master && inst->state != XVRRP_STATE_MASTER) {
		/* Read without the entry's lock: a torn read, an advert
		 * being recorded meanwhile, only makes the check run. */
		struct xvrrp_peer *p = bpf_map_lookup_elem(&peers, key);
		__u8 from[16];
		addr16(from, src, family);
		if (p && !differ(p->addr, from, 16))
			return 1;
	}
	__u32 n = v[3];
	if (n != c->naddr)
		return 0;
	__u32 alen = family == XVRRP_FAMILY_IPV4 ? 4 : 16;
	struct xvrrp_unicast_key ak = {.instance = *key};
	for (__u32 i = 0; i < 255; i++) {
		if (i >= n)
			break;
		const __u8 *a = v + VRRP_HDR + i * alen;
		void *next = (void *)(a + 16);
		if (family == XVRRP_FAMILY_IPV4)
			next = (void *)(a + 4);
		barrier_var(next);
		if (next > end)
			return 0;
		if (family == XVRRP_FAMILY_IPV4) {
			if ((void *)(a + 4) > end)
				return 0;
			__builtin_memcpy(ak.addr, a, 4);
		} else {
			if ((void *)(a + 16) > end)
				return 0;
			__builtin_memcpy(ak.addr, a, 16);
		}
		if (!bpf_map_lookup_elem(&advert_addrs, &ak))
			return 0;
	}
	return 1;
}

/* peer_ttl_ok: a unicast peer's adverts must arrive with a TTL or hop limit
 * in its min_ttl to max_ttl (keepalived counts the others as ip_ttl_err). */
static __always_inline int peer_ttl_ok(const struct xvrrp_unicast_peer *up, __u8 ttl)
{
	return ttl >= up->min_ttl && ttl <= up->max_ttl;
}

/* instance_checks: what the instance the advert is for accepts: its
 * destination, not our own, its version, interval bounds, v2 password and
 * unicast peers, with the TTL range each peer's adverts must arrive in. */
static __always_inline int instance_checks(const struct xvrrp_instance *inst,
					   const struct xvrrp_instance_key *key,
					   const struct ethhdr *eth, const __u8 *v, void *end,
					   __u8 family, const __u8 *src, const __u8 *dst,
					   __u16 interval_cs, __u8 ttl)
{
	__u8 version = v[0] >> 4;
	if (!to_us(inst, eth, dst, family))
		return XVRRP_REASON_DESTINATION;
	if (own_source(inst, eth, src, family))
		return XVRRP_REASON_OWN_SOURCE;
	if (inst->version != version)
		return XVRRP_REASON_VERSION;
	if (interval_cs < inst->min_interval_cs || interval_cs > inst->max_interval_cs)
		return XVRRP_REASON_INTERVAL;
	if (version == 2) {
		if (v[4] != inst->auth_type)
			return XVRRP_REASON_AUTH_TYPE;
		if (inst->auth_type == 1) {
			__u8 *auth = (__u8 *)v + VRRP_HDR + (v[3] & 0xff) * 4;
			void *next = auth + VRRP_AUTH;
			barrier_var(next);
			if (next > end)
				return XVRRP_REASON_LENGTH;
			if (differ(auth, inst->auth_data, VRRP_AUTH))
				return XVRRP_REASON_AUTH_KEY;
		}
	}
	if (inst->flags & XVRRP_F_UNICAST) {
		struct xvrrp_unicast_key uk = {.instance = *key};
		addr16(uk.addr, src, family);
		struct xvrrp_unicast_peer *up = bpf_map_lookup_elem(&unicast_peers, &uk);
		if (!up)
			return XVRRP_REASON_UNICAST_PEER;
		if (!peer_ttl_ok(up, ttl))
			return XVRRP_REASON_TTL;
	}
	if (!advert_addrs_ok(key, inst, v, end, family, src))
		return XVRRP_REASON_ADDR_COUNT;
	return XVRRP_REASON_VALID;
}

/* hand_over leaves the recording of a valid advert to tc_fence_ingress, which
 * sees whether the frame carried a VLAN tag out of band. It returns 0 when the
 * driver keeps no metadata. Packet pointers are void after
 * bpf_xdp_adjust_meta: the caller copied what it needs. */
static __always_inline int hand_over(struct xdp_md *ctx, const struct xvrrp_instance_key *key,
				     __u64 now, __u8 prio, __u8 version, __u16 interval_cs)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct handoff)) != 0)
		return 0;
	struct handoff *h = (void *)(long)ctx->data_meta;
	if ((void *)(h + 1) > (void *)(long)ctx->data)
		return 1; /* cannot happen: the verifier wants it */
	h->magic = HANDOFF_MAGIC;
	h->key = *key;
	h->time_ns = now;
	h->priority = prio;
	h->version = version;
	h->interval_cs = interval_cs;
	return 1;
}

/* unicast_ttl_ok: keepalived (2.x) takes a unicast instance's adverts at any
 * TTL or hop limit: unicast peers may be routers apart, and the peer list
 * checks who sent it. header_checks found the fixed header in the packet. */
static __always_inline int unicast_ttl_ok(const struct xdp_md *ctx, const __u8 *v, void *end, __u8 family)
{
	if ((void *)(v + VRRP_HDR) > end)
		return 0;
	struct xvrrp_instance_key key = {
		.ifindex = ctx->ingress_ifindex,
		.vrid = v[1],
		.family = family,
	};
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, &key);
	return inst && (inst->flags & XVRRP_F_UNICAST);
}

#include "liveness.h"

/* advert judges a VRRP message in vrrp.Classify's order, which both families
 * share, and hands a valid one over (or records it). src and dst point into
 * the packet's IP header. */
static __always_inline int advert(struct xdp_md *ctx, const struct ethhdr *eth, __u8 *v, __u32 plen,
				  void *end, __u8 family, const __u8 *src, const __u8 *dst, __u8 ttl)
{
	int r = header_checks(v, plen, end, family, ttl);
	if (r == XVRRP_REASON_TTL && unicast_ttl_ok(ctx, v, end, family))
		r = XVRRP_REASON_VALID;
	if (r)
		return drop_advert(ctx, v, end, family, r);
	if ((void *)(v + VRRP_HDR) > end) /* header_checks saw it; the verifier wants it here */
		return drop(XVRRP_REASON_LENGTH);
	/* The instance, looked up once: the checksum's form depends on it. */
	struct xvrrp_instance_key key = {
		.ifindex = ctx->ingress_ifindex,
		.vrid = v[1],
		.family = family,
	};
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, &key);
	r = checksum(inst, v, plen, end, family, src, dst);
	if (r)
		return drop_advert(ctx, v, end, family, r);
	__u16 interval_cs;
	r = message_checks(v, plen, family, src, &interval_cs);
	if (r)
		return drop_advert(ctx, v, end, family, r);

	if (!inst) {
		/* Another router's business (keepalived or FRR running other VRIDs
		 * on this link during a migration): well formed, so it goes on to
		 * their sockets untouched. */
		count(XVRRP_REASON_FOREIGN);
		count_foreign(key);
		return XDP_PASS;
	}
	r = instance_checks(inst, &key, eth, v, end, family, src, dst, interval_cs, ttl);
	if (r) {
		count_for(&key, r);
		return drop(r);
	}

	count(XVRRP_REASON_VALID);
	__u64 now = bpf_ktime_get_ns();
	__u8 addr[16];
	addr16(addr, src, family);
	liveness_advert(&key, eth->h_source, addr);
	__u8 prio = v[2];
	__u8 version = v[0] >> 4;
	if (!(inst->flags & XVRRP_F_RECORD_IN_XDP) &&
	    hand_over(ctx, &key, now, prio, version, interval_cs))
		return XDP_PASS;
	/* Asked to (prog.Run tests), or the driver keeps no metadata: record
	 * here, blind to tags kept out of band, as the only choice left. */
	record(&key, inst, addr, prio, version, interval_cs, now);
	return XDP_PASS;
}

SEC("xdp")
int xdp_vrrp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;

	/* A tagged frame (802.1Q or 802.1ad) belongs to its VLAN device, never
	 * to this interface's instances: it passes untouched, and the VLAN
	 * device's own xdp_vrrp (generic XDP, after the kernel removed the tag)
	 * judges it against that device's instances. A host without that VLAN
	 * drops it as PACKET_OTHERHOST. A tag the driver keeps out of band
	 * (hardware VLAN stripping, or a veth fed by a bridge: skb->vlan_tci)
	 * is not in the frame and XDP cannot see it; only a device-bound
	 * program's bpf_xdp_metadata_rx_vlan_tag could. */
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (ip->protocol != IPPROTO_VRRP) {
			/* The fast path: everything that is not VRRP, or UDP to
			 * the liveness port. */
			if (ip->protocol == IPPROTO_UDP)
				return liveness_xdp(eth, ip, end, ctx->ingress_ifindex);
			return XDP_PASS;
		}
		/* ip_rcv's checks, in its order: version, header length,
		 * header checksum, total length. */
		if (ip->version != 4)
			return drop(XVRRP_REASON_IP_VERSION);
		__u32 ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip) || (void *)ip + ihl > end)
			return drop(XVRRP_REASON_LENGTH);
		__u64 hsum = sum32(ip, 5);
		for (__u32 i = 5; i < 15; i++) { /* options: rare in adverts */
			if (i >= ihl / 4)
				break;
			__u32 *w = (__u32 *)ip + i;
			void *next = w + 1;
			barrier_var(next);
			if (next > end)
				return drop(XVRRP_REASON_LENGTH);
			hsum += *w;
		}
		if (fold(hsum) != 0xffff)
			return drop(XVRRP_REASON_IP_CHECKSUM);
		__u32 tot = bpf_ntohs(ip->tot_len);
		if (tot < ihl || (void *)ip + tot > end)
			return drop(XVRRP_REASON_LENGTH);
		if (ip->frag_off & bpf_htons(0x3fff))
			return drop(XVRRP_REASON_LENGTH);
		return advert(ctx, eth, (__u8 *)ip + (ihl & 0x3c), (tot - ihl) & 0xffff, end,
			      XVRRP_FAMILY_IPV4, (__u8 *)&ip->saddr, (__u8 *)&ip->daddr, ip->ttl);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_VRRP)
			return XDP_PASS;
		if (ip6->version != 6)
			return drop(XVRRP_REASON_IP_VERSION);
		__u32 plen = bpf_ntohs(ip6->payload_len);
		if ((void *)(ip6 + 1) + plen > end)
			return drop(XVRRP_REASON_LENGTH);
		return advert(ctx, eth, (__u8 *)(ip6 + 1), plen, end, XVRRP_FAMILY_IPV6,
			      (__u8 *)&ip6->saddr, (__u8 *)&ip6->daddr, ip6->hop_limit);
	}
	return XDP_PASS;
}

enum fence_verdict {
	FENCE_PASS = 0,
	FENCE_LEASE,     /* the owner is not MASTER with a lease */
	FENCE_NO_ACCEPT, /* the owner is master in no_accept mode */
};

/* vip_verdict says whether a node may carry traffic for addr: yes if it is not a
 * VIP; for a VIP, only while the instance owning it is MASTER and its lease has
 * not run out, and, for traffic delivered to the VIP, only if the instance
 * accepts it (RFC 5798 Accept_Mode). */
static __always_inline int vip_verdict(__u8 family, const void *addr, int deliver,
				       struct xvrrp_instance_key *owner)
{
	struct xvrrp_vip_key vk = {.family = family};
	__builtin_memcpy(vk.addr, addr, family == XVRRP_FAMILY_IPV4 ? 4 : 16);
	struct xvrrp_instance_key *ik = bpf_map_lookup_elem(&vips, &vk);
	if (!ik)
		return FENCE_PASS;
	*owner = *ik;
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, ik);
	if (!inst || inst->state != XVRRP_STATE_MASTER || bpf_ktime_get_ns() >= inst->lease_until_ns)
		return FENCE_LEASE;
	if (deliver && (inst->flags & XVRRP_F_NO_ACCEPT))
		return FENCE_NO_ACCEPT;
	return FENCE_PASS;
}

#define ICMPV6_NS 135

static __always_inline int fence(struct __sk_buff *skb, int egress)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (!egress)
		commit(skb, data, end);
	__be16 proto;
	void *p = l3(data, end, &proto);
	if (!p)
		return TC_ACT_UNSPEC;

	int v = FENCE_PASS;
	struct xvrrp_instance_key owner = {};
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = p;
		if ((void *)(ip + 1) > end)
			return TC_ACT_UNSPEC;
		v = vip_verdict(XVRRP_FAMILY_IPV4, egress ? &ip->saddr : &ip->daddr, !egress, &owner);
		if (egress && v == FENCE_PASS && ip->protocol == IPPROTO_UDP) {
			liveness_stamp(skb, ip, end);
			return TC_ACT_UNSPEC;
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = p;
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_UNSPEC;
		__u8 *icmp = (__u8 *)(ip6 + 1);
		int nd = ip6->nexthdr == IPPROTO_ICMPV6 && (void *)(icmp + 24) <= end &&
			 (icmp[0] == ICMPV6_NS || icmp[0] == ICMPV6_NA);
		/* Neighbour discovery for a VIP is answered even in no_accept mode. */
		v = vip_verdict(XVRRP_FAMILY_IPV6, egress ? &ip6->saddr : &ip6->daddr, !egress && !nd, &owner);
		/* A neighbour advertisement for a VIP, from whatever source. */
		if (v == FENCE_PASS && egress && nd && icmp[0] == ICMPV6_NA)
			v = vip_verdict(XVRRP_FAMILY_IPV6, icmp + 8, 0, &owner);
	} else if (proto == bpf_htons(ETH_P_ARP) && egress) {
		/* ARP replies and gratuitous ARPs announcing a VIP: the sender
		 * protocol address, after the 8-byte header and the sender MAC. */
		__u8 *arp = p;
		if ((void *)(arp + 28) <= end && arp[4] == 6 && arp[5] == 4)
			v = vip_verdict(XVRRP_FAMILY_IPV4, arp + 14, 0, &owner);
	}
	if (v == FENCE_PASS)
		return TC_ACT_UNSPEC;
	struct xvrrp_instance_stats *s = instance_counters(&owner);
	if (v == FENCE_NO_ACCEPT) {
		count(XVRRP_COUNTER_NO_ACCEPT);
		if (s)
			s->no_accept++;
	} else {
		count(egress ? XVRRP_COUNTER_FENCED_EGRESS : XVRRP_COUNTER_FENCED_INGRESS);
		if (s) {
			if (egress)
				s->fenced_egress++;
			else
				s->fenced_ingress++;
		}
	}
	return TC_ACT_SHOT;
}

SEC("tcx/ingress")
int tc_fence_ingress(struct __sk_buff *skb)
{
	return fence(skb, 0);
}

/* VMACs (use_vmac). A backup's VMAC has the master's MAC, and a switch learns
 * a MAC's port from every frame that carries it: a backup's VMAC that sent
 * anything would pull the master's traffic to itself until the master's next
 * advert. The kernel sends, on its own, IGMP and MLD reports for the groups
 * joined on an interface (the VRRP group, its addresses' solicited-node
 * groups) and router solicitations. As keepalived does with nftables, reports
 * leaving a VMAC go with its parent's MAC, and solicitations are dropped.
 * The agent lists its VMACs here: ifindex → the parent's MAC. */
struct xvrrp_vmac_parent {
	__u8 mac[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct xvrrp_vmac_parent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vmacs SEC(".maps");

#define ICMPV6_RS 133

/* vmac_egress returns TC_ACT_SHOT for a router solicitation leaving a VMAC,
 * and rewrites an IGMP or MLD report's source MAC to the parent's. Only such
 * packets cost a map lookup: everything else leaves after the header checks.
 * Not inlined: merged into fence, clang hoisted the ctx offsets out of the
 * loads of skb->data, which the verifier refuses. */
static __attribute__((noinline)) int vmac_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	int rs = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_IGMP)
			return TC_ACT_UNSPEC;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_UNSPEC;
		__u8 nh = ip6->nexthdr;
		__u8 *l4 = (__u8 *)(ip6 + 1);
		if (nh == 0) { /* MLD comes after a hop-by-hop header (router alert) */
			if ((void *)(l4 + 2) > end)
				return TC_ACT_UNSPEC;
			nh = l4[0];
			l4 += ((__u32)l4[1] + 1) * 8;
		}
		if (nh != IPPROTO_ICMPV6 || (void *)(l4 + 1) > end)
			return TC_ACT_UNSPEC;
		/* MLDv1 query, report, done; MLDv2 report; router solicitation */
		__u8 t = l4[0];
		if (t != 130 && t != 131 && t != 132 && t != 143 && t != ICMPV6_RS)
			return TC_ACT_UNSPEC;
		rs = t == ICMPV6_RS;
	} else {
		return TC_ACT_UNSPEC;
	}
	__u32 idx = skb->ifindex;
	struct xvrrp_vmac_parent *vp = bpf_map_lookup_elem(&vmacs, &idx);
	if (!vp)
		return TC_ACT_UNSPEC;
	if (rs)
		return TC_ACT_SHOT;
	__u8 mac[6];
	__builtin_memcpy(mac, vp->mac, 6);
	bpf_skb_store_bytes(skb, 6, mac, 6, 0);
	return TC_ACT_UNSPEC;
}

SEC("tcx/egress")
int tc_fence_egress(struct __sk_buff *skb)
{
	if (vmac_egress(skb) == TC_ACT_SHOT)
		return TC_ACT_SHOT;
	return fence(skb, 1);
}
