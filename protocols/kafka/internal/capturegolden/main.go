// Command capturegolden records the request frames real clients send, as
// golden frames for the wire codec's tests: it plays a minimal one-broker
// cluster (ApiVersions, Metadata, Produce) on a free port, runs kcat
// (librdkafka) and franz-go against it, and writes each request frame, size
// prefix included, to <dir>/<client>-<API>-v<version>.bin.
//
//	go run ./protocols/kafka/internal/capturegolden protocols/kafka/wire/testdata
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	out := os.Args[1]
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c, out, addr)
		}
	}()
	prefix = "kcat"
	cmd := exec.Command("kcat", "-b", addr.String(), "-L", "-t", "golden", "-m", "2")
	cmd.Run()
	time.Sleep(200 * time.Millisecond)
	prefix = "kcat"
	cmd = exec.Command("kcat", "-b", addr.String(), "-P", "-t", "golden", "-z", "gzip", "-K", ":")
	cmd.Stdin = strings.NewReader(strings.Repeat("k1:hello hello hello hello\nk2:world world world world\n", 10))
	cmd.Run()
	time.Sleep(200 * time.Millisecond)
	prefix = "kgo"
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr.String()), kgo.ClientID("golden-kgo"))
	req := kmsg.NewPtrMetadataRequest()
	t := "golden"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &t}}
	ctx, cancel := contextWithTimeout()
	defer cancel()
	req.RequestWith(ctx, cl)
	cl.Close()
	cl, _ = kgo.NewClient(kgo.SeedBrokers(addr.String()), kgo.ClientID("golden-kgo"), kgo.DefaultProduceTopic("golden"),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.DisableIdempotentWrite())
	cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(strings.Repeat("zstd golden ", 20))})
	cl.Close()
	time.Sleep(200 * time.Millisecond)
}

var prefix string

func serve(c net.Conn, out string, addr *net.TCPAddr) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var sz [4]byte
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(sz[:]))
		io.ReadFull(br, body)
		h, req, err := wire.ParseRequest(body)
		if err != nil {
			fmt.Println("parse:", err)
			return
		}
		name := fmt.Sprintf("%s-%s-v%d.bin", prefix, kmsg.NameForKey(h.Key), h.Version)
		os.WriteFile(filepath.Join(out, name), append(sz[:], body...), 0o644)
		fmt.Println("wrote", name)
		var resp kmsg.Response
		switch r := req.(type) {
		case *kmsg.ApiVersionsRequest:
			av := r.ResponseKind().(*kmsg.ApiVersionsResponse)
			for _, k := range []int16{0, 1, 3, 18, 22} {
				av.ApiKeys = append(av.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MaxVersion: kmsg.RequestForKey(k).MaxVersion()})
			}
			resp = av
		case *kmsg.MetadataRequest:
			md := r.ResponseKind().(*kmsg.MetadataResponse)
			md.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "127.0.0.1", Port: int32(addr.Port)}}
			tn := "golden"
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &tn
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Leader = 1
			mp.Replicas, mp.ISR = []int32{1}, []int32{1}
			mt.Partitions = append(mt.Partitions, mp)
			md.Topics = append(md.Topics, mt)
			resp = md
		case *kmsg.ProduceRequest:
			pr := r.ResponseKind().(*kmsg.ProduceResponse)
			for _, t := range r.Topics {
				rt := kmsg.ProduceResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
				for _, p := range t.Partitions {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition = p.Partition
					rt.Partitions = append(rt.Partitions, rp)
				}
				pr.Topics = append(pr.Topics, rt)
			}
			resp = pr
		default:
			return
		}
		c.Write(wire.AppendResponse(nil, h.Correlation, resp))
	}
}

func contextWithTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 3*time.Second)
}
