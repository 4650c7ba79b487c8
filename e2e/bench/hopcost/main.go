// Command hopcost measures what one proxy hop costs on this machine's
// loopback, apart from any protocol: the CPU per GB of a bulk TCP transfer
// client → sink directly, and client → proxy → sink through a proxy that
// copies (read, write) or splices (splice(2) through a pipe, no copy to
// user space). All three run in this process; the figure is the process's
// CPU (user+system) per GB sent, so the difference between the modes is
// the hop's own cost.
//
//	go run ./e2e/bench/hopcost [-gb 2] [-rounds 3]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"syscall"
	"time"
)

func main() {
	gb := flag.Float64("gb", 2, "GB sent per measurement")
	rounds := flag.Int("rounds", 3, "rounds of the three modes")
	flag.Parse()
	log.SetFlags(0)
	for r := 1; r <= *rounds; r++ {
		for _, mode := range []string{"direct", "copy", "splice"} {
			mbps, cpu, err := measure(mode, int64(*gb*1e9))
			if err != nil {
				fmt.Printf("round %d %-7s %v\n", r, mode, err)
				continue
			}
			fmt.Printf("round %d %-7s %6.0f MB/s  %.2f CPU-s per GB\n", r, mode, mbps, cpu)
		}
	}
}

// sink accepts one connection and reads it to the end.
func sink() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}()
	return ln, nil
}

// proxy accepts one connection and moves it to dst, copying or splicing.
func proxy(dst string, splice bool) (net.Listener, chan error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() {
		in, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", dst)
		if err != nil {
			done <- err
			return
		}
		defer out.Close()
		if splice {
			done <- spliceAll(in.(*net.TCPConn), out.(*net.TCPConn))
			return
		}
		buf := make([]byte, 1<<20)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, werr := out.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
			}
			if errors.Is(err, io.EOF) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	return ln, done, nil
}

func measure(mode string, total int64) (mbps, cpuPerGB float64, err error) {
	sk, err := sink()
	if err != nil {
		return 0, 0, err
	}
	defer sk.Close()
	target := sk.Addr().String()
	var done chan error
	if mode != "direct" {
		pl, d, err := proxy(target, mode == "splice")
		if err != nil {
			return 0, 0, err
		}
		defer pl.Close()
		target, done = pl.Addr().String(), d
	}
	c, err := net.Dial("tcp", target)
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 4<<20)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	var sent int64
	for sent < total {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			return 0, 0, err
		}
	}
	c.Close()
	if done != nil {
		if err := <-done; err != nil {
			return 0, 0, err
		}
	}
	el := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	return float64(sent) / el.Seconds() / 1e6, cpu.Seconds() / (float64(sent) / 1e9), nil
}
