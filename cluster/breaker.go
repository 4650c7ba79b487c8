package cluster

import (
	"sync/atomic"
	"time"
)

// breaker is a per-node circuit breaker: closed until threshold
// consecutive failures, then open for openFor, then half-open: one trial
// request; its success closes the breaker, its failure opens it again.
type breaker struct {
	enabled   bool
	threshold int32
	openFor   int64 // ns

	fails     atomic.Int32
	openUntil atomic.Int64 // unix ns; 0 = closed
	trial     atomic.Bool  // a half-open trial is in flight
}

func (b *breaker) init(enabled bool, threshold int, openFor time.Duration) {
	b.enabled = enabled
	b.threshold = int32(max(threshold, 1))
	b.openFor = int64(max(openFor, time.Millisecond))
}

// mayTry reports whether a request could go to the node now (no state
// change): closed, or open with its timeout passed and no trial in flight.
func (b *breaker) mayTry(now int64) bool {
	if !b.enabled {
		return true
	}
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	return now >= until && !b.trial.Load()
}

// admit is called for the node chosen: in half-open state only one caller
// wins the trial.
func (b *breaker) admit(now int64) bool {
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
	return b.trial.CompareAndSwap(false, true)
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
		b.trial.Store(false)
	}
}

func (b *breaker) failure(now int64) {
	if !b.enabled {
		return
	}
	if b.trial.Load() {
		// the half-open trial failed: open again
		b.openUntil.Store(now + b.openFor)
		b.trial.Store(false)
		return
	}
	if b.fails.Add(1) >= b.threshold && b.openUntil.Load() == 0 {
		b.openUntil.Store(now + b.openFor)
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
