package kafka

import (
	"context"
	"sync"
)

// maxOtherRequest bounds requests other than Produce, whose size
// kafka.max_request_size bounds: the others carry no record batches, and
// even a consumer of 100,000 partitions commits in a few MB.
const maxOtherRequest = 16 << 20

// bigFrame is the size from which a request frame's buffer counts
// against the read budget.
const bigFrame = 1 << 20

// readBudget bounds the bytes of large request frames being read. A
// frame's buffer is allocated at its declared size as soon as its 4 size
// bytes arrive (so that its body is read straight into it, and its record
// batches go to the brokers from there); without a bound, clients could
// make the ambassador hold gigabytes by declaring them, 8 bytes sent per
// 100 MiB. A frame that would pass the budget waits until others are read
// (a slow one is cut by the frame's read deadline); one frame alone always
// passes, so no size within kafka.max_request_size waits forever.
type readBudget struct {
	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed, and replaced, when bytes are given back
}

// acquire takes n bytes of a budget of max, waiting while it is used up;
// false when ctx ended first.
func (b *readBudget) acquire(ctx context.Context, n, max int64) bool {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= max {
			b.used += n
			b.mu.Unlock()
			return true
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *readBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// readBudgetMax is the budget for frames of at most maxRequest bytes.
func readBudgetMax(maxRequest int32) int64 {
	return max(256<<20, 2*int64(maxRequest))
}
