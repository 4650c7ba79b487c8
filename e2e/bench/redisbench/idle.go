package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idleResult is the memory of one proxy around holding n idle clients.
type idleResult struct {
	Target    string
	Conns     int           // connections that got PONG and were held
	Open      time.Duration // time to open them all
	RSSStart  int64         // KiB, right after start-up
	RSSBefore int64         // KiB, after the benchmarks, before the connections
	RSSWith   int64         // KiB, with the connections open and idle
	RSSAfter  int64         // KiB, 3 s after they were closed
	RSSLater  int64         // KiB, laterDelay after they were closed
	Inside    string        // the process's own account while holding them, if it gives one
	Err       error

	pid    int
	closed time.Time
}

// laterDelay is when memory is read a last time after the idle clients
// closed: Go's scavenger returns freed memory to the OS over minutes.
const laterDelay = 20 * time.Second

// raiseNoFile sets the soft RLIMIT_NOFILE to at least need (up to the
// hard limit, raising the hard limit too when allowed). Children started
// afterwards inherit it: nutcracker and the ambassador need one fd per
// client. Go lifts its own soft limit at start-up but gives exec'd
// children the original one unless the program calls Setrlimit itself.
func raiseNoFile(need uint64) (before, after syscall.Rlimit, err error) {
	if err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		return
	}
	want := before
	if want.Max < need {
		want.Max = need
	}
	want.Cur = max(want.Cur, min(need, want.Max))
	if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// not allowed to raise the hard limit: take what it allows
		want.Max = before.Max
		want.Cur = max(before.Cur, min(need, before.Max))
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after)
	return
}

// holdIdle opens n client connections to addr, each sends PING and reads
// PONG, then stays idle; it calls measure with them open, then closes
// them with RST (SO_LINGER 0, no TIME_WAIT left behind on a shared
// machine).
func holdIdle(ctx context.Context, addr string, n int, measure func()) (int, time.Duration, error) {
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = c.Close()
			}
		}
	}()
	ping := respCommand("PING")
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 { // a listen backlog is typically 128 to 4096 long
		wg.Go(func() {
			br := bufio.NewReaderSize(nil, 64)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := dialPing(ctx, addr, ping, br)
				if err != nil {
					fail(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	opened := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, opened, err
	}
	held := 0
	for _, c := range conns {
		if c != nil {
			held++
		}
	}
	if firstErr != nil {
		return held, opened, firstErr
	}
	measure()
	// every connection must still be open: a PING on a sample answers
	for i := 0; i < n; i += max(1, n/100) {
		if err := pingOn(conns[i], ping, bufio.NewReaderSize(conns[i], 64)); err != nil {
			return held, opened, fmt.Errorf("connection %d after the measurement: %w", i, err)
		}
	}
	return held, opened, nil
}

func dialPing(ctx context.Context, addr string, ping []byte, br *bufio.Reader) (net.Conn, error) {
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			lastErr = err
			continue
		}
		br.Reset(c)
		if err := pingOn(c, ping, br); err != nil {
			_ = c.Close()
			lastErr = err
			continue
		}
		return c, nil
	}
	return nil, lastErr
}

func pingOn(c net.Conn, ping []byte, br *bufio.Reader) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(ping); err != nil {
		return err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("closed by the server")
		}
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// measureIdle runs holdIdle against one proxy and reads its RSS around it.
func measureIdle(ctx context.Context, name, addr string, pid, n int, rssStart int64, inside func() string) idleResult {
	r := idleResult{Target: name, RSSStart: rssStart, pid: pid}
	var err error
	if r.RSSBefore, err = procRSS(pid); err != nil {
		r.Err = err
		return r
	}
	r.Conns, r.Open, r.Err = holdIdle(ctx, addr, n, func() {
		time.Sleep(2 * time.Second) // let the server settle (lazy buffers, GC)
		r.RSSWith, err = procRSS(pid)
		if inside != nil {
			r.Inside = inside()
		}
	})
	if r.Err == nil && err != nil {
		r.Err = err
	}
	r.closed = time.Now()
	if r.Err != nil {
		return r
	}
	select {
	case <-ctx.Done():
		r.Err = ctx.Err()
		return r
	case <-time.After(3 * time.Second):
	}
	r.RSSAfter, _ = procRSS(pid)
	return r
}

// readLater reads RSSLater of each result once laterDelay has passed
// since its connections closed.
func readLater(ctx context.Context, rs []idleResult) {
	for i := range rs {
		r := &rs[i]
		if r.Err != nil || r.closed.IsZero() {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(r.closed.Add(laterDelay))):
		}
		r.RSSLater, _ = procRSS(r.pid)
	}
}
