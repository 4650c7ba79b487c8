package kafka

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
)

// Frames of every size around the thresholds, sent in slow pieces, are
// read whole through the low-water-mark reader, and the last one (nothing
// follows it) does not wait for bytes that never come.
func TestLowatReaderFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sizes := []int{5, 64 << 10, lowatMin - 1, lowatMin, lowatMin + 1, 700 << 10, lowatMax, lowatMax + 3, 3*lowatMax + 12345, 100}
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for i, n := range sizes {
			f := make([]byte, 4+n)
			binary.BigEndian.PutUint32(f, uint32(n))
			for j := 4; j < len(f); j++ {
				f[j] = byte(i + j)
			}
			// pieces of 100 KB with pauses: the reader sees partial frames
			for len(f) > 0 {
				k := min(len(f), 100<<10)
				if _, err := c.Write(f[:k]); err != nil {
					return
				}
				f = f[k:]
				time.Sleep(time.Millisecond)
			}
		}
		// the connection stays open: a reader waiting for more than the
		// last frame would hang until the deadline
		time.Sleep(10 * time.Second)
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := newLowatReader(c)
	lr, ok := r.(*lowatReader)
	if !ok {
		t.Fatalf("a TCP connection got %T, not the low-water-mark reader", r)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, n := range sizes {
		f, err := wire.ReadFrame(br, 1<<30, nil)
		if err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		want := make([]byte, n)
		for j := range want {
			want[j] = byte(i + j + 4)
		}
		if !bytes.Equal(f, want) {
			t.Fatalf("frame %d (%d bytes): wrong content", i, n)
		}
		if lr.off {
			t.Fatal("SO_RCVLOWAT refused")
		}
	}
	if lr.peak != lowatMax {
		t.Fatalf("highest low-water mark set %d, want %d", lr.peak, lowatMax)
	}
	// after the last (small) frame the mark is back to 1
	var got int
	rc, _ := c.(*net.TCPConn).SyscallConn()
	_ = rc.Control(func(fd uintptr) { got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) })
	if got != 1 || lr.cur != 1 {
		t.Fatalf("low-water mark after a small frame: socket %d, reader %d; want 1", got, lr.cur)
	}
}
