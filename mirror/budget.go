package mirror

import (
	"context"
	"sync"
)

// byteBudget bounds the bytes a flow holds in flight: read from its sources
// but not yet acknowledged by its target. Readers acquire before handing
// records on and the writer releases once the target acknowledged them, so
// memory does not grow with the backlog.
type byteBudget struct {
	mu     sync.Mutex
	max    int64
	used   int64
	wakeup chan struct{} // closed and replaced on every release
}

func newByteBudget(max int64) *byteBudget {
	return &byteBudget{max: max, wakeup: make(chan struct{})}
}

// acquire waits until n bytes fit, or ctx ends. A request larger than the
// whole budget is granted when nothing else is held, so one huge record
// cannot stall a flow.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.max || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		w := b.wakeup
		b.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.used = 0
	}
	close(b.wakeup)
	b.wakeup = make(chan struct{})
	b.mu.Unlock()
}

func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
