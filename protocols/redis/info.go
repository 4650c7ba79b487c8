package redis

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// hInfo answers INFO with the nodes' sections merged (numeric fields
// summed across nodes, where a sum means something) and an Ambassador
// section of its own.
func hInfo(c *client, _ *route, cmd resp.Command, start int) {
	withOwn := len(cmd.Args) == 1
	onlyOwn := len(cmd.Args) > 1
	for _, a := range cmd.Args[1:] {
		s := strings.ToLower(string(a))
		switch s {
		case "ambassador":
			withOwn = true
		case "all", "everything", "default":
			withOwn = true
			onlyOwn = false
		default:
			onlyOwn = false
		}
	}
	if onlyOwn {
		r := c.addReq()
		r.reply = resp.AppendVerbatim(r.reply[:0], c.f.ambassadorInfo(), c.proto)
		return
	}
	r := c.fanout(cmd, start, mergeInfo)
	if r != nil && withOwn {
		r.aux = 1
	}
}

// nonAdditive are INFO fields whose sum across nodes means nothing; the
// first node's value is kept.
var nonAdditive = map[string]bool{
	"tcp_port": true, "process_id": true, "process_supervised": true, "hz": true,
	"configured_hz": true, "lru_clock": true, "arch_bits": true, "server_time_usec": true,
	"io_threads_active": true, "redis_git_dirty": true, "atomicvar_api": true,
	"maxmemory_policy": true, "aof_enabled": true, "cluster_enabled": true,
	"loading": true, "async_loading": true, "rdb_bgsave_in_progress": true,
	"aof_rewrite_in_progress": true, "aof_rewrite_scheduled": true,
	"master_failover_state": true, "mem_not_counted_for_evict": false,
	// the host's, not the node's: nodes on one host would count it twice
	"total_system_memory": true,
}

func additive(key string) bool {
	if nonAdditive[key] {
		return false
	}
	for _, s := range []string{"_ratio", "_perc", "_time", "_time_sec", "_offset", "uptime", "last_", "_since_", "_status", "_active_", "_start_"} {
		if strings.Contains(key, s) {
			return false
		}
	}
	return true
}

type infoField struct {
	key  string
	vals []string
}

type infoSection struct {
	name   string
	fields []*infoField
	index  map[string]*infoField
}

func parseInfo(text []byte, sections *[]*infoSection, byName map[string]*infoSection, node, nodes int) {
	var cur *infoSection
	for _, line := range bytes.Split(text, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			name := strings.TrimSpace(string(line[1:]))
			cur = byName[name]
			if cur == nil {
				cur = &infoSection{name: name, index: map[string]*infoField{}}
				byName[name] = cur
				*sections = append(*sections, cur)
			}
			continue
		}
		if cur == nil {
			continue
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		f := cur.index[k]
		if f == nil {
			f = &infoField{key: k, vals: make([]string, nodes)}
			cur.index[k] = f
			cur.fields = append(cur.fields, f)
		}
		f.vals[node] = v
	}
}

func mergeInfo(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	var sections []*infoSection
	byName := map[string]*infoSection{}
	for i, s := range r.subs {
		text, _ := resp.Bulk(s.reply)
		parseInfo(text, &sections, byName, i, len(r.subs))
	}
	var b strings.Builder
	for i, sec := range sections {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + sec.name + "\r\n")
		for i, v := range mergeSection(sec) {
			key := sec.fields[i].key
			if sec.name == "Server" {
				v = c.f.ownServerField(key, v)
			}
			b.WriteString(key + ":" + v + "\r\n")
		}
	}
	if r.aux == 1 {
		if len(sections) > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(c.f.ambassadorInfo())
	}
	c.out = resp.AppendVerbatim(c.out, b.String(), int(r.proto))
}

// mergeSection merges a section's fields (in order): each by mergeValue,
// and each X_human (X in K/M/G) from the merged X, not the first node's.
func mergeSection(sec *infoSection) []string {
	vals := make([]string, len(sec.fields))
	for i, f := range sec.fields {
		vals[i] = mergeValue(sec.name, f)
	}
	for i, f := range sec.fields {
		if base, ok := strings.CutSuffix(f.key, "_human"); ok {
			if bf := sec.index[base]; bf != nil {
				for j, g := range sec.fields {
					if g == bf {
						if n, err := strconv.ParseUint(vals[j], 10, 64); err == nil {
							vals[i] = bytesToHuman(n)
						}
					}
				}
			}
		}
	}
	return vals
}

// mergeValue sums a field across the nodes that have it when each has a
// number and the sum means something; keyspace lines sum their keys and
// expires, commandstats and errorstats their counters.
func mergeValue(section string, f *infoField) string {
	if section == "Keyspace" {
		var keys, expires, ttl int64
		for _, v := range f.vals {
			for _, kv := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseInt(val, 10, 64)
				switch k {
				case "keys":
					keys += n
				case "expires":
					expires += n
				case "avg_ttl":
					ttl = max(ttl, n)
				}
			}
		}
		return fmt.Sprintf("keys=%d,expires=%d,avg_ttl=%d", keys, expires, ttl)
	}
	// A node that lacks the field (a command it never ran, a section it
	// does not have) counts for nothing: it neither blanks the value nor
	// stops the sum.
	present := make([]string, 0, len(f.vals))
	for _, v := range f.vals {
		if v != "" {
			present = append(present, v)
		}
	}
	if len(present) == 0 {
		return ""
	}
	first := present[0]
	if section == "Commandstats" || section == "Errorstats" {
		return mergeCounters(present)
	}
	if !additive(f.key) {
		return first
	}
	var isum int64
	var fsum float64
	isFloat := false
	for _, v := range present {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			isum += n
			fsum += float64(n)
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".") {
			fsum += x
			isFloat = true
			continue
		}
		return first
	}
	if isFloat {
		return strconv.FormatFloat(fsum, 'f', 2, 64)
	}
	return strconv.FormatInt(isum, 10)
}

// mergeCounters sums the counters of commandstats and errorstats lines
// ("calls=2,usec=7,usec_per_call=3.50,rejected_calls=0,failed_calls=0",
// "count=1") across nodes and recomputes usec_per_call.
func mergeCounters(vals []string) string {
	var order []string
	sums := map[string]int64{}
	for _, v := range vals {
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			if _, seen := sums[k]; !seen {
				order = append(order, k)
			}
			n, _ := strconv.ParseInt(val, 10, 64)
			sums[k] += n
		}
	}
	var b strings.Builder
	for i, k := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=")
		if k == "usec_per_call" {
			per := 0.0
			if c := sums["calls"]; c > 0 {
				per = float64(sums["usec"]) / float64(c)
			}
			b.WriteString(strconv.FormatFloat(per, 'f', 2, 64))
			continue
		}
		b.WriteString(strconv.FormatInt(sums[k], 10))
	}
	return b.String()
}

// ambassadorInfo is the INFO section about the ambassador itself.
func (f *Frontend) ambassadorInfo() string {
	cfg := f.cfg()
	var b strings.Builder
	b.WriteString("# Ambassador\r\n")
	nodes := f.cl.Nodes()
	up := 0
	for _, n := range nodes {
		if n.Up() {
			up++
		}
	}
	fmt.Fprintf(&b, "ambassador_mode:sharded\r\nhash:%s\r\ndistribution:%s\r\nhash_tag:%s\r\nauto_eject:%t\r\n", cfg.Hash, cfg.Distribution, cfg.HashTag, cfg.AutoEject)
	fmt.Fprintf(&b, "connected_clients:%d\r\npool_size:%d\r\nnodes:%d\r\nnodes_up:%d\r\n", f.srv.Active(), f.poolSize(), len(nodes), up)
	for i, n := range nodes {
		state := "up"
		if !n.Up() {
			state = "down"
		}
		fmt.Fprintf(&b, "node%d:addr=%s,state=%s,weight=%d\r\n", i, n.Addr(), state, n.Spec().Weight)
	}
	return b.String()
}

// bytesToHuman writes n bytes as Redis's INFO does (1.65M).
func bytesToHuman(n uint64) string {
	const k = 1024
	units := []struct {
		limit float64
		unit  string
	}{{k * k, "K"}, {k * k * k, "M"}, {k * k * k * k, "G"}, {k * k * k * k * k, "T"}, {k * k * k * k * k * k, "P"}}
	if n < k {
		return strconv.FormatUint(n, 10) + "B"
	}
	d := float64(n)
	for _, u := range units {
		if d < u.limit {
			return strconv.FormatFloat(d/(u.limit/k), 'f', 2, 64) + u.unit
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// ownServerField gives the ambassador's own port and process id in INFO
// server, not a node's: the client connects to the ambassador, and is not
// to learn a backend's address.
func (f *Frontend) ownServerField(key, v string) string {
	switch key {
	case "tcp_port":
		if a, ok := f.Addr().(*net.TCPAddr); ok {
			return strconv.Itoa(a.Port)
		}
	case "process_id":
		return strconv.Itoa(os.Getpid())
	}
	return v
}
