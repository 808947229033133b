package benchmark

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress display intervals.
const (
	// DefaultTerminalRefresh is how often the progress bar is redrawn on a
	// terminal.
	DefaultTerminalRefresh = 100 * time.Millisecond
	// DefaultLineInterval is how often a progress line is written when the
	// output is not a terminal.
	DefaultLineInterval = 2 * time.Second

	progressBarWidth = 30
)

// ProgressOutput says where runs show their progress. The zero value shows
// none.
type ProgressOutput struct {
	// W receives the progress display; nil shows none.
	W io.Writer
	// Terminal redraws one bar in place (carriage return, erase line) every
	// DefaultTerminalRefresh; otherwise a plain line is written every
	// DefaultLineInterval.
	Terminal bool
}

// progress tracks one run's count and draws it until stop. A nil *progress
// counts nothing and draws nothing, so callers need not check.
type progress struct {
	out   ProgressOutput
	label string
	total int64
	start time.Time
	done  atomic.Int64

	quit chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts drawing label's progress towards total records; it
// returns nil when out has no writer.
func startProgress(out ProgressOutput, label string, total int64) *progress {
	if out.W == nil {
		return nil
	}
	p := &progress{out: out, label: label, total: total, start: time.Now(), quit: make(chan struct{})}
	every := DefaultLineInterval
	if out.Terminal {
		every = DefaultTerminalRefresh
	}
	p.wg.Add(1)
	go p.run(every)
	return p
}

func (p *progress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

func (p *progress) run(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.draw()
		}
	}
}

// stop ends the display; on a terminal it erases the bar so that what is
// printed next starts on a clean line.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.quit)
	p.wg.Wait()
	if p.out.Terminal {
		fmt.Fprint(p.out.W, "\r\x1b[K")
	}
}

func (p *progress) draw() {
	done := p.done.Load()
	elapsed := time.Since(p.start)
	rate := float64(done) / elapsed.Seconds()
	frac := 0.0
	if p.total > 0 {
		frac = min(1, float64(done)/float64(p.total))
	}
	eta := "?"
	if rate > 0 && p.total > done {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if p.out.Terminal {
		filled := int(frac * progressBarWidth)
		bar := strings.Repeat("=", filled)
		if filled < progressBarWidth {
			bar += ">" + strings.Repeat(" ", progressBarWidth-filled-1)
		}
		fmt.Fprintf(p.out.W, "\r\x1b[K%s [%s] %3.0f%% %d/%d %s rec/s ETA %s",
			p.label, bar, frac*100, done, p.total, humanCount(rate), eta)
		return
	}
	fmt.Fprintf(p.out.W, "%s: %d/%d records (%.0f%%), %s rec/s, %s elapsed\n",
		p.label, done, p.total, frac*100, humanCount(rate), elapsed.Round(time.Second))
}

// humanCount formats a rate with a k or M suffix.
func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
