package server

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// returnMemory gives memory back to the operating system after a burst —
// thousands of clients that went away, say — instead of waiting for the
// runtime's slow background scavenger, so that RSS comes down. It frees
// when much heap sits idle, or when the goroutine count (one per client)
// fell to under half its peak.
func (s *Server) returnMemory(ctx context.Context, every time.Duration, threshold uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	peak := runtime.NumGoroutine()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := runtime.NumGoroutine()
		peak = max(peak, n)
		metrics.Read(sample)
		idleHeap := sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > threshold
		if idleHeap || peak-n > 1000 && n < peak/2 {
			debug.FreeOSMemory()
			peak = n
		}
	}
}
