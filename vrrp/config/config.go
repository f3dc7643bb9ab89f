// Package config reads keepalived.conf — the VRRP side of it — into xvrrp's
// configuration, validating it the way keepalived does. Keywords of keepalived's
// other parts (LVS, SMTP, SNMP, BFD, process tuning) are accepted with a warning
// naming them; a keyword that would change VRRP behaviour and that xvrrp does not
// implement is an error, never silently ignored.
package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// Config is a parsed and validated configuration.
type Config struct {
	Global         Global
	Scripts        []*Script
	Instances      []*Instance
	SyncGroups     []*SyncGroup
	GarpGroups     []*GarpGroup
	TrackFiles     []*TrackFile
	TrackProcesses []*TrackProcess
	// Warnings are problems that do not stop xvrrp: ignored keywords of other
	// keepalived parts, settings keepalived also ignores, deprecated forms.
	Warnings []Diag
}

// Global holds global_defs.
type Global struct {
	RouterID    string
	Version     uint8 // vrrp_version, default 2
	McastGroup4 netip.Addr
	McastGroup6 netip.Addr
	Garp        Garp
	// GarpInterval and GnaInterval space out gratuitous ARPs and NAs.
	GarpInterval time.Duration
	GnaInterval  time.Duration
	// GarpExtraIf and GarpExtraIfAll are vrrp_garp_extra_if, the default of
	// the instances' garp_extra_if.
	GarpExtraIf    time.Duration
	GarpExtraIfAll bool
	// MinGarp sends one GARP on becoming master and no refresh (vrrp_min_garp).
	MinGarp              bool
	StartupDelay         time.Duration
	EnableScriptSecurity bool
	ScriptUser           string
	ScriptGroup          string
	MaxAutoPriority      int           // -1 when unset
	MinAutoPriorityDelay time.Duration // 0 when unset
	SkipCheckAdvAddr     bool
	Strict               bool
	CheckUnicastSrc      bool
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	DownTimerAdverts     int
	NotifyFifo           *Fifo
	VRRPNotifyFifo       *Fifo
	NotifyPriorityChange bool
	DefaultInterface     string
	DynamicInterfaces    bool
	// StartupScript runs once before the instances start, ShutdownScript
	// once after they stop, each killed after its timeout in seconds
	// (startup_script_timeout, shutdown_script_timeout; 0: 10).
	StartupScript, ShutdownScript               *Command
	StartupScriptTimeout, ShutdownScriptTimeout int
	LogUnknownVRIDs                             bool
	VMACPrefix                                  string
	VMACAddrPrefix                              string // vmac_addr_prefix: names the VMACs of use_vmac_addr
	// Process tuning of the daemon: vrrp_rt_priority (0: unset),
	// vrrp_rlimit_rttime (0: unset), vrrp_no_swap, vrrp_cpu_affinity.
	RTPriority   int
	Nice         *int // vrrp_priority
	RLimitRTTime time.Duration
	NoSwap       bool
	CPUAffinity  []int
}

// GarpGroup is a garp_group block: the spacing of gratuitous ARP and
// unsolicited NA rounds on one interface, instead of the global
// vrrp_garp_interval and vrrp_gna_interval (unset here: none).
type GarpGroup struct {
	Pos          Pos
	Interface    string
	GarpInterval time.Duration
	GnaInterval  time.Duration
}

// GarpGroupOf is the garp_group of an interface, or nil.
func (c *Config) GarpGroupOf(ifname string) *GarpGroup {
	for _, g := range c.GarpGroups {
		if g.Interface == ifname {
			return g
		}
	}
	return nil
}

// Garp is the gratuitous ARP / unsolicited NA schedule of a master.
type Garp struct {
	MasterDelay         time.Duration // second burst after becoming master; 0: none
	MasterRepeat        int           // GARPs per burst
	MasterRefresh       time.Duration // periodic refresh while master; 0: none
	MasterRefreshRepeat int
	LowerPrioDelay      time.Duration // burst after hearing a lower priority advert
	LowerPrioRepeat     int
}

// Fifo is a notify FIFO with an optional script reading it.
type Fifo struct {
	Path   string
	Script *Command
}

// Command is a script or program to run, as written, with the user to run it as.
type Command struct {
	Pos   Pos
	Line  string // as written, quotes removed, e.g. `/usr/local/bin/notify.sh MASTER`
	User  string
	Group string
}

// shellChars are what make a command line need /bin/sh -c.
const shellChars = "|&;<>()$`\\\"'*?[]#~=%{}\n"

// NeedsShell says whether the line uses the shell's syntax, so that it runs
// through /bin/sh -c rather than as words: which programs it runs is then the
// shell's business, and no check of the first word covers them.
func (c *Command) NeedsShell() bool {
	return strings.ContainsAny(c.Line, shellChars)
}

// Script is a vrrp_script.
type Script struct {
	Pos      Pos
	Name     string
	Command  *Command
	Interval time.Duration
	Timeout  time.Duration // 0: the interval
	Weight   int
	Reverse  bool
	Rise     int
	Fall     int
	InitFail bool
	// Check is set for an xvrrp_check, xvrrp's built-in check, and Command is
	// then nil.
	Check *Check
}

// Check is the test of an xvrrp_check block.
type Check struct {
	Kind   string // CheckTCP or CheckHTTP
	Target string // ADDRESS:PORT, or the URL
	Status int    // the HTTP status that means healthy, 200 by default
}

const (
	CheckTCP  = "tcp_connect"
	CheckHTTP = "http_get"
)

// Family of an instance, from its VIPs.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Instance is a vrrp_instance.
type Instance struct {
	Pos       Pos
	Name      string
	State     string // MASTER, BACKUP, or "" (BACKUP)
	Interface string
	VRID      uint8
	Priority  uint8 // base priority, 1–255
	Interval  time.Duration
	Version   uint8 // effective: instance, else global; IPv6 is always 3
	Family    Family
	AuthType  uint8  // vrrp.AuthNone or vrrp.AuthPass
	AuthPass  string // at most 8 bytes, as sent

	VIPs         []VIP
	ExcludedVIPs []VIP
	Routes       []Route
	Rules        []Rule

	Preempt      bool
	PreemptDelay time.Duration
	// Accept is accept mode: answer for VIPs when not the address owner. keepalived
	// defaults it on, unless strict mode.
	Accept bool

	McastSrcIP netip.Addr
	// McastDstIP is where multicast adverts go: mcast_dst_ip, else the global
	// vrrp_mcast_group4/6 for the family (224.0.0.18 / ff02::12 by default).
	McastDstIP      netip.Addr
	UnicastSrcIP    netip.Addr
	UnicastPeers    []UnicastPeer
	CheckUnicastSrc bool
	// ChecksumAsV2 is v3_checksum_as_v2: VRRPv3 IPv4 adverts are sent, and
	// accepted only, with the checksum of the message alone.
	ChecksumAsV2       bool
	UnicastTTL         int // 0: 255
	UnicastFaultNoPeer bool

	TrackInterfaces []TrackInterface
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef
	TrackProcesses  []TrackRef

	Notify Notify

	Garp Garp
	// GarpExtraIf: while master, gratuitous ARPs every GarpExtraIf for the
	// addresses on interfaces other than the instance's, or on all of them
	// with GarpExtraIfAll (garp_extra_if [all] N); 0: none.
	GarpExtraIf    time.Duration
	GarpExtraIfAll bool
	UseVMAC        bool
	VMACName       string
	VMACAddr       string
	VMACXmitBase   bool
	// UseVMACAddr: use_vmac_addr. AddrVMACs are the VMACs it (or use_vmac
	// on an address) makes, for addresses on other interfaces or of the
	// other family; each such VIP names its own in VMAC.
	UseVMACAddr          bool
	AddrVMACs            []AddrVMAC
	DontTrackPrimary     bool
	TrackSrcIP           bool
	SkipCheckAdvAddr     bool
	Strict               bool
	DownTimerAdverts     int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	PromoteSecondaries   bool
	// Liveness is fast_liveness, an xvrrp extension: nil when off.
	Liveness *Liveness

	// Group is the sync group this instance belongs to, or nil; SyncGroup is
	// its name, "" when none.
	Group     *SyncGroup
	SyncGroup string
}

// VIP is one line of virtual_ipaddress or virtual_ipaddress_excluded.
type VIP struct {
	Pos          Pos
	Prefix       netip.Prefix
	Dev          string
	Label        string
	Scope        string
	Broadcast    string
	Peer         netip.Addr
	NoDAD        bool
	Home         bool
	MngTmpAddr   bool
	NoPrefixRt   bool
	AutoJoin     bool
	NoTrack      bool
	UseVMAC      bool
	PreferredLFT string
	// VMAC is the name of the use_vmac_addr VMAC the address lives on, ""
	// when none (validation fills it in).
	VMAC string
}

// AddrVMAC is a VMAC that use_vmac_addr, or use_vmac on an address, makes on
// an interface for the addresses of one family there.
type AddrVMAC struct {
	Name   string // vmac_addr_prefix[6][N].VRID, as keepalived names it
	Parent string
	Family Family
	MAC    string
}

// Route is one line of virtual_routes: keepalived's `ip route`-like syntax,
// as written (Words) and as read.
type Route struct {
	Pos   Pos
	Words []string

	Type   string       // "" (unicast), blackhole, unreachable, prohibit or throw
	Dst    netip.Prefix // to
	Src    netip.Addr   // src: the preferred source
	Via    netip.Addr   // via or gw
	Dev    string
	Scope  string // host, link, global, nowhere, site or a number
	Table  int    // 0: main
	Metric int    // metric, preference or priority
	OnLink bool
	// NoTrack: removed by something else while master, the route stays
	// removed until the next mastership (keepalived's no_track).
	NoTrack bool
}

// Rule is one line of virtual_rules: a policy routing rule, as `ip rule`
// takes it.
type Rule struct {
	Pos   Pos
	Words []string

	From, To  netip.Prefix
	Table     int
	Priority  int // preference, priority or pref; 0: the kernel chooses
	IIf, OIf  string
	FwMark    uint32
	FwMask    uint32 // 0: all bits
	HasFwMark bool
	Family    Family
	// NoTrack: removed by something else while master, the rule stays
	// removed until the next mastership (keepalived's no_track).
	NoTrack bool
}

// UnicastPeer is one unicast_peer entry: the peer, and the TTL (or hop
// limit) its adverts must arrive with, 0 to 255 unless min_ttl or max_ttl.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int
	MaxTTL int
}

// TTL is the range of TTLs the peer's adverts are accepted with.
func (u UnicastPeer) TTL() vrrp.TTLRange {
	return vrrp.TTLRange{Min: uint8(u.MinTTL), Max: uint8(u.MaxTTL)}
}

// TTLChecked says whether min_ttl or max_ttl narrow the range.
func (u UnicastPeer) TTLChecked() bool { return u.MinTTL != 0 || u.MaxTTL != 255 }

// TrackInterface is one track_interface entry.
type TrackInterface struct {
	Pos     Pos
	Name    string
	Weight  int
	Reverse bool
}

// TrackRef is a track_script, track_file or track_process entry: a named tracker
// and, when given, the weight that overrides the tracker's own.
type TrackRef struct {
	Pos     Pos
	Name    string
	Weight  *int
	Reverse bool
}

// Notify holds the notify scripts of an instance or a sync group.
type Notify struct {
	Master, Backup, Fault, Stop, Any, Deleted *Command
	// MasterRxLowerPri is an instance's only: keepalived and xvrrp refuse
	// it in a vrrp_sync_group, so there is nothing to inherit.
	MasterRxLowerPri *Command
	PriorityChanges  bool
}

// SyncGroup is a vrrp_sync_group.
type SyncGroup struct {
	Pos             Pos
	Name            string
	Members         []string
	TrackInterfaces []TrackInterface
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef
	TrackProcesses  []TrackRef
	Notify          Notify
	TrackingWeight  bool // sync_group_tracking_weight
}

// TrackFile is a vrrp_track_file (or track_file) block.
type TrackFile struct {
	Pos       Pos
	Name      string
	File      string
	Weight    int
	Reverse   bool
	InitFile  bool
	InitValue int
	Overwrite bool
}

// TrackProcess is a vrrp_track_process block.
type TrackProcess struct {
	Pos            Pos
	Name           string
	Process        string
	Params         string
	ParamMatch     string // "", "initial" or "partial"
	FullCommand    bool
	Weight         int
	Reverse        bool
	Quorum         int
	QuorumMax      int
	ForkDelay      time.Duration
	TerminateDelay time.Duration
}

// Script returns the vrrp_script with the given name, or nil.
func (c *Config) Script(name string) *Script {
	for _, s := range c.Scripts {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Instance returns the vrrp_instance with the given name, or nil.
func (c *Config) Instance(name string) *Instance {
	for _, in := range c.Instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// TrackFile returns the track file with the given name, or nil.
func (c *Config) TrackFile(name string) *TrackFile {
	for _, t := range c.TrackFiles {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TrackProcess returns the tracked process with the given name, or nil.
func (c *Config) TrackProcess(name string) *TrackProcess {
	for _, t := range c.TrackProcesses {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// ScriptTimeout is a startup_script_timeout or shutdown_script_timeout in
// seconds as a duration: keepalived's 10 s when not given.
func ScriptTimeout(secs int) time.Duration {
	if secs == 0 {
		secs = 10
	}
	return time.Duration(secs) * time.Second
}

// Liveness is an instance's fast_liveness block: as a backup, probe the
// master every Interval and take over once Multiplier probes in a row went
// unanswered; as master, answer probes from the kernel while the lease runs.
type Liveness struct {
	Pos        Pos
	Interval   time.Duration
	Multiplier int
}

// Liveness defaults and bounds.
const (
	LivenessInterval    = 10 * time.Millisecond
	LivenessMultiplier  = 3
	LivenessMinInterval = 100 * time.Microsecond
	LivenessMaxInterval = 10 * time.Second
)
