/* fast_liveness: detection below Master_Down_Interval (issue 20, part 2).
 *
 * A backup probes its master every interval; the master's XDP program answers
 * each probe itself (XDP_TX), only while it is MASTER with a running lease; the
 * backup's XDP program checks the reply and re-arms a bpf_timer at
 * multiplier × interval (+ a skew by priority); when the timer finds
 * multiplier probes unanswered it wakes the daemon with a LIVENESS_LOST event,
 * and the daemon takes over as on Master_Down.
 *
 * The probe: IPv4, TTL 255, no options, UDP from and to port
 * XVRRP_LIVENESS_PORT, checksum 0, payload struct xvrrp_probe (16 bytes), sent
 * by the backup's daemon to the master's MAC and address (the source of its
 * adverts, as its kernel recorded them). The backup's tc egress writes a fresh
 * random nonce into each probe as it leaves and remembers it; the master
 * swaps the Ethernet and IP addresses and the ports, sets type REPLY and sends
 * it back; the backup accepts a reply only from the master's MAC and address,
 * at TTL 255, echoing a nonce it has outstanding (each once).
 *
 * Included by xvrrp.c after its helpers, maps and announce; the hooks in
 * shared code are one call each: liveness_xdp (UDP in xdp_vrrp),
 * liveness_advert (a valid advert), liveness_stamp (tc egress). */
#ifndef XVRRP_LIVENESS_H
#define XVRRP_LIVENESS_H

#define IPPROTO_UDP 17
#define XVRRP_LIVENESS_PORT 7112
#define XVRRP_PROBE_MAGIC 0x58564c50 /* "XVLP" */
#define XVRRP_PROBE_VERSION 1
#define CLOCK_MONOTONIC 1
#define XVRRP_LIVENESS_NONCES 4

enum xvrrp_probe_type {
	XVRRP_PROBE = 1,
	XVRRP_PROBE_REPLY = 2,
};

/* The UDP payload of a probe and its reply. */
struct xvrrp_probe {
	__be32 magic;
	__u8 version;
	__u8 type;   /* enum xvrrp_probe_type */
	__u8 vrid;
	__u8 flags;  /* 0 */
	__u64 nonce; /* written by the prober's tc egress; echoed by the master */
};

/* A backup's liveness state for one instance, by instance key: written by the
 * daemon when the instance starts (interval, multiplier, timeout), by XDP
 * (the master's address and MAC from its adverts, replies) and by tc egress
 * (the probes that left). A daemon write replaces the entry, timer included. */
struct xvrrp_liveness {
	struct bpf_timer timer;
	__u64 interval_ns;
	/* How long after a reply the timer looks at the unanswered probes:
	 * multiplier × interval + (256 − priority) × interval / 256. */
	__u64 timeout_ns;
	__u32 multiplier;
	/* A reply from this master was heard: missing replies count. Cleared
	 * when the master changes or the timer raised its event. */
	__u8 armed;
	/* The timer stopped because no probe left (the daemon was not
	 * probing): the next probe starts it again. */
	__u8 waiting;
	__u8 master_mac[6];
	__u8 master[16];     /* IPv4 in the first 4 bytes */
	__u64 nonces[XVRRP_LIVENESS_NONCES];
	__u64 sent;          /* probes stamped */
	__u64 unanswered;    /* probes stamped since the last valid reply */
	__u64 last_probe_ns;
	__u64 last_reply_ns;
	__u64 replies;       /* valid replies */
	__u64 lost;          /* LIVENESS_LOST events raised */
	__u64 lost_ns;       /* when the last was raised */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xvrrp_instance_key);
	__type(value, struct xvrrp_liveness);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} liveness SEC(".maps");

const struct xvrrp_liveness *unused_liveness __attribute__((unused));
const struct xvrrp_probe *unused_probe __attribute__((unused));
const enum xvrrp_probe_type *unused_probe_type __attribute__((unused));

/* liveness_expired runs multiplier × interval (and a skew) after the last
 * valid reply, and then every half interval while probes are out: it raises
 * LIVENESS_LOST once multiplier probes went unanswered, the last of them for
 * at least half an interval. Probes the daemon did not send are not missed
 * replies: a stalled prober never declares a live master dead. */
static int liveness_expired(void *map, struct xvrrp_instance_key *key, struct xvrrp_liveness *lv)
{
	__u64 now = bpf_ktime_get_ns();
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, key);
	if (!inst || inst->state != XVRRP_STATE_BACKUP || !lv->armed) {
		lv->armed = 0;
		return 0;
	}
	__u64 half = lv->interval_ns / 2;
	__u64 missed = lv->unanswered;
	if (missed > lv->multiplier || (missed >= lv->multiplier && now >= lv->last_probe_ns + half)) {
		lv->armed = 0;
		lv->lost++;
		lv->lost_ns = now;
		announce(key, XVRRP_EVENT_LIVENESS_LOST, lv->master, 0, 0, 0, now);
		return 0;
	}
	if (now > lv->last_probe_ns + lv->timeout_ns) {
		/* No probe leaves: wait for the next (liveness_stamp). */
		lv->waiting = 1;
		return 0;
	}
	bpf_timer_start(&lv->timer, half ? half : 1, 0);
	return 0;
}

static __always_inline void liveness_arm(struct xvrrp_liveness *lv, __u64 ns)
{
	if (bpf_timer_init(&lv->timer, &liveness, CLOCK_MONOTONIC) == 0)
		bpf_timer_set_callback(&lv->timer, liveness_expired);
	bpf_timer_start(&lv->timer, ns, 0);
}

/* liveness_advert follows the master: a valid advert from another address or
 * MAC than the one probed makes it the one to probe, unarmed until it first
 * answers (a master without fast_liveness, or keepalived, never does). */
static __always_inline void liveness_advert(const struct xvrrp_instance_key *key, const __u8 *mac,
					    const __u8 *addr)
{
	struct xvrrp_liveness *lv = bpf_map_lookup_elem(&liveness, key);
	if (!lv)
		return;
	if (!differ(lv->master, addr, 16) && !differ(lv->master_mac, mac, 6))
		return;
	__builtin_memcpy(lv->master, addr, 16);
	__builtin_memcpy(lv->master_mac, mac, 6);
	lv->armed = 0;
	lv->unanswered = 0;
#pragma unroll
	for (int i = 0; i < XVRRP_LIVENESS_NONCES; i++)
		lv->nonces[i] = 0;
}

/* liveness_serving: a master answers probes while it is MASTER with a running
 * lease and its daemon keeps renewing it: no later than half an interval past
 * the renewal its next advert was due. The lease alone runs longer than a
 * backup's Master_Down_Interval (a frozen master keeps serving clients until its
 * successor's first advert), so a frozen daemon's kernel would answer probes
 * until then and liveness would find no frozen master sooner than plain VRRP.
 * vrrp.LivenessServes is the same rule for the daemon's side. */
static __always_inline int liveness_serving(const struct xvrrp_instance *inst, __u64 now)
{
	__u64 interval = (__u64)inst->interval_cs * 10000000ULL;
	if (inst->state != XVRRP_STATE_MASTER || now >= inst->lease_until_ns)
		return 0;
	return interval == 0 || now <= inst->renewed_ns + interval + interval / 2;
}

/* liveness_answer: a master answers a probe to its MAC and address while it
 * is serving (liveness_serving), from XDP, never from user space. */
static __always_inline int liveness_answer(struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
					   struct xvrrp_probe *pr, const struct xvrrp_instance_key *key)
{
	struct xvrrp_instance *inst = bpf_map_lookup_elem(&instances, key);
	if (!inst || !(inst->flags & XVRRP_F_LIVENESS))
		return drop(XVRRP_COUNTER_LIVENESS_OFF);
	if ((!zero_mac(inst->mac) && differ(eth->h_dest, inst->mac, 6)) ||
	    (!zero16(inst->local) && differ((__u8 *)&ip->daddr, inst->local, 4)))
		return drop(XVRRP_COUNTER_LIVENESS_DESTINATION);
	if (!liveness_serving(inst, bpf_ktime_get_ns()))
		return drop(XVRRP_COUNTER_LIVENESS_NO_LEASE);
	__u8 mac[6];
	__builtin_memcpy(mac, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	/* Swapping addresses or ports leaves both checksums as they were. */
	__be32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	__be16 p = udp->source;
	udp->source = udp->dest;
	udp->dest = p;
	udp->check = 0;
	pr->type = XVRRP_PROBE_REPLY;
	count(XVRRP_COUNTER_LIVENESS_ANSWERED);
	return XDP_TX;
}

/* liveness_reply: a backup takes a reply from its master's MAC and address
 * echoing a nonce it has outstanding, and re-arms the miss timer. */
static __always_inline int liveness_reply(struct ethhdr *eth, struct iphdr *ip, struct xvrrp_probe *pr,
					  const struct xvrrp_instance_key *key)
{
	struct xvrrp_liveness *lv = bpf_map_lookup_elem(&liveness, key);
	if (!lv)
		return drop(XVRRP_COUNTER_LIVENESS_UNSOLICITED);
	if (differ(eth->h_source, lv->master_mac, 6) || differ((__u8 *)&ip->saddr, lv->master, 4))
		return drop(XVRRP_COUNTER_LIVENESS_FORGED);
	__u64 nonce = pr->nonce;
	int found = 0;
#pragma unroll
	for (int i = 0; i < XVRRP_LIVENESS_NONCES; i++) {
		if (nonce != 0 && lv->nonces[i] == nonce) {
			lv->nonces[i] = 0;
			found = 1;
		}
	}
	if (!found)
		return drop(XVRRP_COUNTER_LIVENESS_NONCE);
	lv->last_reply_ns = bpf_ktime_get_ns();
	lv->unanswered = 0;
	lv->replies++;
	lv->armed = 1;
	lv->waiting = 0;
	liveness_arm(lv, lv->timeout_ns);
	count(XVRRP_COUNTER_LIVENESS_REPLY);
	return XDP_DROP;
}

/* liveness_xdp takes IPv4 UDP from xdp_vrrp: anything but a probe or a reply
 * (port, magic) passes after three checks; a probe or reply is answered or
 * taken, or counted and dropped. */
static __always_inline int liveness_xdp(struct ethhdr *eth, struct iphdr *ip, void *end, __u32 ifindex)
{
	struct udphdr *udp = (void *)(ip + 1);
	if (ip->ihl != 5 || (void *)(udp + 1) > end || udp->dest != bpf_htons(XVRRP_LIVENESS_PORT))
		return XDP_PASS;
	struct xvrrp_probe *pr = (void *)(udp + 1);
	if ((void *)(pr + 1) > end || pr->magic != bpf_htonl(XVRRP_PROBE_MAGIC))
		return XDP_PASS;
	if (ip->version != 4 || ip->ttl != 255 || (ip->frag_off & bpf_htons(0x3fff)) ||
	    ip->tot_len != bpf_htons(sizeof(*ip) + sizeof(*udp) + sizeof(*pr)) ||
	    udp->len != bpf_htons(sizeof(*udp) + sizeof(*pr)) || udp->source != udp->dest ||
	    pr->version != XVRRP_PROBE_VERSION || fold(sum32(ip, 5)) != 0xffff)
		return drop(XVRRP_COUNTER_LIVENESS_MALFORMED);
	struct xvrrp_instance_key key = {.ifindex = ifindex, .vrid = pr->vrid, .family = XVRRP_FAMILY_IPV4};
	if (pr->type == XVRRP_PROBE)
		return liveness_answer(eth, ip, udp, pr, &key);
	if (pr->type == XVRRP_PROBE_REPLY)
		return liveness_reply(eth, ip, pr, &key);
	return drop(XVRRP_COUNTER_LIVENESS_MALFORMED);
}

/* liveness_stamp gives a probe leaving for the master a fresh nonce and
 * counts it out; ip follows an untagged Ethernet header. A probe to anyone
 * else leaves as it is, and its reply will echo no nonce of ours. */
static __always_inline void liveness_stamp(struct __sk_buff *skb, struct iphdr *ip, void *end)
{
	struct udphdr *udp = (void *)(ip + 1);
	if (ip->ihl != 5 || (void *)(udp + 1) > end || udp->dest != bpf_htons(XVRRP_LIVENESS_PORT))
		return;
	struct xvrrp_probe *pr = (void *)(udp + 1);
	if ((void *)(pr + 1) > end || pr->magic != bpf_htonl(XVRRP_PROBE_MAGIC) || pr->type != XVRRP_PROBE)
		return;
	if ((void *)ip != (void *)(long)skb->data + sizeof(struct ethhdr))
		return;
	struct xvrrp_instance_key key = {.ifindex = skb->ifindex, .vrid = pr->vrid, .family = XVRRP_FAMILY_IPV4};
	struct xvrrp_liveness *lv = bpf_map_lookup_elem(&liveness, &key);
	if (!lv || differ((__u8 *)&ip->daddr, lv->master, 4))
		return;
	__u64 nonce = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	if (nonce == 0)
		nonce = 1;
	/* Not a direct write: that would make the fence unclone every cloned
	 * skb it sees (TCP sends clones). Packet pointers are void after it. */
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) +
					     __builtin_offsetof(struct xvrrp_probe, nonce),
				&nonce, sizeof(nonce), 0))
		return;
	__u64 now = bpf_ktime_get_ns();
	lv->nonces[lv->sent & (XVRRP_LIVENESS_NONCES - 1)] = nonce;
	lv->sent++;
	lv->unanswered++;
	lv->last_probe_ns = now;
	if (lv->armed && lv->waiting) {
		lv->waiting = 0;
		liveness_arm(lv, lv->timeout_ns);
	}
}

#endif /* XVRRP_LIVENESS_H */
