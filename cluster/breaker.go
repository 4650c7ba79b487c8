package cluster

import (
	"sync/atomic"
	"time"
)

// breaker is a per-node circuit breaker: closed until threshold
// consecutive failures, then open for openFor, then half-open: a trial;
// its success closes the breaker, its failure opens it again.
//
// The trial is a short window (trialWindow) in which the node is admitted,
// not a single caller: one command may look up several keys of the node
// (MGET, a transaction), and refusing all but the first lookup refused the
// command, while the trial it had claimed was never sent and never
// answered, leaving the node refused for good. A trial that gets no answer
// (nothing was sent after all) lapses after openFor, and the next
// admission opens a new window.
type breaker struct {
	enabled   bool
	threshold int32
	openFor   int64 // ns

	fails     atomic.Int32
	openUntil atomic.Int64 // unix ns; 0 = closed
	trialAt   atomic.Int64 // unix ns when the current half-open trial began; 0 = none
}

// trialWindow is how long a half-open trial admits requests.
const trialWindow = int64(20 * time.Millisecond)

func (b *breaker) init(enabled bool, threshold int, openFor time.Duration) {
	b.enabled = enabled
	b.threshold = int32(max(threshold, 1))
	b.openFor = int64(max(openFor, time.Millisecond))
}

// mayTry reports whether a request could go to the node now (no state
// change): closed, or half-open with no trial waiting for its answer.
func (b *breaker) mayTry(now int64) bool {
	if !b.enabled {
		return true
	}
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	if now < until {
		return false
	}
	t := b.trialAt.Load()
	return t == 0 || now < t+trialWindow || now >= t+b.openFor
}

// admit is called for the node chosen: in half-open state it opens a trial
// window, or admits within the current one. window is trialWindow for a
// key's lookup, 0 for a keyless pick (one request each: the trial is that
// one request).
func (b *breaker) admit(now, window int64) bool {
	if !b.enabled {
		return true
	}
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	if now < until {
		return false
	}
	for {
		t := b.trialAt.Load()
		if t != 0 && now < t+window {
			return true
		}
		if t != 0 && now < t+b.openFor {
			return false // a trial is waiting for its answer
		}
		if b.trialAt.CompareAndSwap(t, now) {
			return true
		}
	}
}

func (b *breaker) success() {
	if !b.enabled {
		return
	}
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.trialAt.Store(0)
	}
}

func (b *breaker) failure(now int64) {
	if !b.enabled {
		return
	}
	if until := b.openUntil.Load(); until != 0 {
		if now >= until {
			// a half-open trial failed: open again
			b.openUntil.Store(now + b.openFor)
			b.trialAt.Store(0)
		}
		return // open: failures of requests sent before it opened
	}
	if b.fails.Add(1) >= b.threshold && b.openUntil.CompareAndSwap(0, now+b.openFor) {
		b.fails.Store(0)
	}
}

func (b *breaker) stateName(now int64) string {
	until := b.openUntil.Load()
	switch {
	case until == 0:
		return "closed"
	case now < until:
		return "open"
	default:
		return "half-open"
	}
}
