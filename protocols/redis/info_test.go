package redis

import (
	"strings"
	"testing"
)

const infoNode0 = "# Server\r\nredis_version:7.0.15\r\ntcp_port:7000\r\nuptime_in_seconds:100\r\nprocess_id:11\r\n\r\n" +
	"# Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\n\r\n" +
	"# Memory\r\nused_memory:1000\r\nused_memory_human:1000B\r\nmem_fragmentation_ratio:1.50\r\n\r\n" +
	"# Stats\r\ntotal_commands_processed:10\r\ninstantaneous_ops_per_sec:5\r\nrdb_last_save_time:1700000000\r\nmaster_repl_offset:77\r\n\r\n" +
	"# CPU\r\nused_cpu_sys:1.50\r\n\r\n" +
	"# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n"

const infoNode1 = "# Server\r\nredis_version:7.0.15\r\ntcp_port:7001\r\nuptime_in_seconds:50\r\nprocess_id:12\r\n\r\n" +
	"# Clients\r\nconnected_clients:4\r\nblocked_clients:0\r\n\r\n" +
	"# Memory\r\nused_memory:500\r\nused_memory_human:500B\r\nmem_fragmentation_ratio:2.00\r\n\r\n" +
	"# Stats\r\ntotal_commands_processed:5\r\ninstantaneous_ops_per_sec:1\r\nrdb_last_save_time:1700000001\r\nmaster_repl_offset:99\r\n\r\n" +
	"# CPU\r\nused_cpu_sys:2.25\r\n\r\n" +
	"# Keyspace\r\ndb0:keys=4,expires=0,avg_ttl=0\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n"

// infoNode2 has an empty keyspace, as a node without keys reports.
const infoNode2 = "# Server\r\nredis_version:7.0.15\r\ntcp_port:7002\r\n\r\n# Clients\r\nconnected_clients:1\r\n\r\n# Keyspace\r\n"

func TestMergeInfo(t *testing.T) {
	var sections []*infoSection
	byName := map[string]*infoSection{}
	for i, text := range []string{infoNode0, infoNode1, infoNode2} {
		parseInfo([]byte(text), &sections, byName, i, 3)
	}
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	if got := strings.Join(names, ","); got != "Server,Clients,Memory,Stats,CPU,Keyspace" {
		t.Errorf("sections %s, in the nodes' order", got)
	}
	want := map[string]string{
		"Server/redis_version":            "7.0.15",
		"Server/tcp_port":                 "7000", // not a sum
		"Server/uptime_in_seconds":        "100",
		"Server/process_id":               "11",
		"Clients/connected_clients":       "8",
		"Clients/blocked_clients":         "1",
		"Memory/used_memory":              "1500",
		"Memory/used_memory_human":        "1000B",
		"Memory/mem_fragmentation_ratio":  "1.50",
		"Stats/total_commands_processed":  "15",
		"Stats/instantaneous_ops_per_sec": "6",
		"Stats/rdb_last_save_time":        "1700000000",
		"Stats/master_repl_offset":        "77",
		"CPU/used_cpu_sys":                "3.75",
		"Keyspace/db0":                    "keys=7,expires=1,avg_ttl=100",
		"Keyspace/db1":                    "keys=1,expires=0,avg_ttl=0",
	}
	for key, w := range want {
		sec, field, _ := strings.Cut(key, "/")
		s := byName[sec]
		if s == nil || s.index[field] == nil {
			t.Errorf("%s: missing", key)
			continue
		}
		if got := mergeValue(sec, s.index[field]); got != w {
			t.Errorf("%s = %q, want %q", key, got, w)
		}
	}
}

// TestMergeInfoHuman: X_human fields follow the merged X (they showed the
// first node's next to a sum), and the host's total memory is not summed.
func TestMergeInfoHuman(t *testing.T) {
	n0 := "# Memory\r\nused_memory:1000000\r\nused_memory_human:976.56K\r\ntotal_system_memory:25000000000\r\ntotal_system_memory_human:23.28G\r\nmaxmemory_policy:noeviction\r\n"
	n1 := "# Memory\r\nused_memory:730000\r\nused_memory_human:712.89K\r\ntotal_system_memory:25000000000\r\ntotal_system_memory_human:23.28G\r\nmaxmemory_policy:noeviction\r\n"
	var sections []*infoSection
	byName := map[string]*infoSection{}
	for i, text := range []string{n0, n1} {
		parseInfo([]byte(text), &sections, byName, i, 2)
	}
	got := mergeSection(byName["Memory"])
	want := []string{"1730000", "1.65M", "25000000000", "23.28G", "noeviction"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("merged Memory %q, want %q", got, want)
	}
	for n, w := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1.00K", 1536: "1.50K", 1 << 20: "1.00M", 5 << 30: "5.00G", 3 << 40: "3.00T", 2 << 50: "2.00P"} {
		if got := bytesToHuman(n); got != w {
			t.Errorf("bytesToHuman(%d) = %q, want %q", n, got, w)
		}
	}
}

func TestAdditive(t *testing.T) {
	for key, want := range map[string]bool{
		"connected_clients": true, "keyspace_hits": true, "total_net_input_bytes": true, "used_memory": true,
		"tcp_port": false, "uptime_in_days": false, "mem_fragmentation_ratio": false, "rdb_last_bgsave_status": false,
		"master_repl_offset": false, "lru_clock": false, "hz": false, "aof_enabled": false, "loading": false,
	} {
		if got := additive(key); got != want {
			t.Errorf("additive(%s) = %v, want %v", key, got, want)
		}
	}
}

// Commandstats and errorstats: counters summed, a node that never ran a
// command (no line) counts zero instead of blanking the value.
func TestMergeInfoCommandstats(t *testing.T) {
	n0 := "# Commandstats\r\ncmdstat_get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=1\r\n"
	n1 := "# Commandstats\r\ncmdstat_get:calls=6,usec=14,usec_per_call=2.33,rejected_calls=1,failed_calls=0\r\n" +
		"cmdstat_hset:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=4\r\n"
	var sections []*infoSection
	byName := map[string]*infoSection{}
	for i, text := range []string{n0, n1} {
		parseInfo([]byte(text), &sections, byName, i, 2)
	}
	for key, w := range map[string]string{
		"Commandstats/cmdstat_get":       "calls=8,usec=24,usec_per_call=3.00,rejected_calls=1,failed_calls=0",
		"Commandstats/cmdstat_hset":      "calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0",
		"Errorstats/errorstat_ERR":       "count=3",
		"Errorstats/errorstat_WRONGTYPE": "count=4",
	} {
		sec, field, _ := strings.Cut(key, "/")
		if got := mergeValue(sec, byName[sec].index[field]); got != w {
			t.Errorf("%s = %q, want %q", key, got, w)
		}
	}
}
