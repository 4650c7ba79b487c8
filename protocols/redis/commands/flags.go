package commands

import "strings"

// Flag is a set of command flags, one bit per flag Redis knows. The names
// are those of the COMMAND reply. Redis 7.0 hides may_replicate, sentinel,
// only_sentinel, protected and touches_arbitrary_keys from COMMAND, so a
// table generated from a server never sets them; the constants exist so
// that callers can name them.
type Flag uint64

// Command flags.
const (
	FlagWrite                Flag = 1 << iota // write
	FlagReadonly                              // readonly
	FlagDenyOOM                               // denyoom
	FlagModule                                // module
	FlagAdmin                                 // admin
	FlagPubSub                                // pubsub
	FlagNoScript                              // noscript
	FlagBlocking                              // blocking
	FlagLoading                               // loading
	FlagStale                                 // stale
	FlagSkipMonitor                           // skip_monitor
	FlagSkipSlowlog                           // skip_slowlog
	FlagAsking                                // asking
	FlagFast                                  // fast
	FlagNoAuth                                // no_auth
	FlagMayReplicate                          // may_replicate
	FlagSentinel                              // sentinel
	FlagOnlySentinel                          // only_sentinel
	FlagNoMandatoryKeys                       // no_mandatory_keys
	FlagProtected                             // protected
	FlagModuleGetKeys                         // module_getkeys
	FlagModuleGetChannels                     // module_getchannels
	FlagModuleNoCluster                       // module_no_cluster
	FlagTouchesArbitraryKeys                  // touches_arbitrary_keys
	FlagNoAsyncLoading                        // no_async_loading
	FlagNoMulti                               // no_multi
	FlagMovableKeys                           // movablekeys
	FlagAllowBusy                             // allow_busy
)

// flagNames holds the wire name of each bit, in bit order.
var flagNames = [...]string{
	"write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
	"blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
	"fast", "no_auth", "may_replicate", "sentinel", "only_sentinel",
	"no_mandatory_keys", "protected", "module_getkeys", "module_getchannels",
	"module_no_cluster", "touches_arbitrary_keys", "no_async_loading",
	"no_multi", "movablekeys", "allow_busy",
}

// ParseFlag returns the flag named name (as in the COMMAND reply,
// case-insensitive).
func ParseFlag(name string) (Flag, bool) {
	for i, n := range flagNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names returns the wire names of the flags in f, in bit order.
func (f Flag) Names() []string {
	var out []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String returns the flags' names joined by "|", or "0".
func (f Flag) String() string {
	if f == 0 {
		return "0"
	}
	return strings.Join(f.Names(), "|")
}

// KeySpecFlag is a set of key-specification flags.
type KeySpecFlag uint16

// Key-specification flags (see "Key specifications" in the Redis docs).
const (
	KeyRO            KeySpecFlag = 1 << iota // RO: read-only access
	KeyRW                                    // RW: read-write access
	KeyOW                                    // OW: overwrite
	KeyRM                                    // RM: deletes the key
	KeyAccess                                // access: returns, copies or uses user data
	KeyUpdate                                // update: updates data in the value
	KeyInsert                                // insert: adds data, nothing modified or deleted
	KeyDelete                                // delete: deletes data from the value
	KeyNotKey                                // not_key: not a key (a shard channel)
	KeyIncomplete                            // incomplete: the spec may miss keys
	KeyVariableFlags                         // variable_flags: flags depend on arguments
)

var keySpecFlagNames = [...]string{
	"RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
	"not_key", "incomplete", "variable_flags",
}

// ParseKeySpecFlag returns the key-spec flag named name (as in the COMMAND
// reply, case-insensitive).
func ParseKeySpecFlag(name string) (KeySpecFlag, bool) {
	for i, n := range keySpecFlagNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names returns the wire names of the flags in f, in bit order.
func (f KeySpecFlag) Names() []string {
	var out []string
	for i, n := range keySpecFlagNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String returns the flags' names joined by "|", or "0".
func (f KeySpecFlag) String() string {
	if f == 0 {
		return "0"
	}
	return strings.Join(f.Names(), "|")
}
