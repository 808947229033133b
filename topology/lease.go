package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of MemberOptions.
const (
	// DefaultMemberTTL is the TTL of a member's own check, to which its
	// session is bound: a killed member loses its locks this long after
	// its last renewal.
	DefaultMemberTTL = 5 * time.Second
	// DefaultLockDelay is the session's lock-delay: how long a lock
	// released by an invalidated session stays unavailable. Consul reads 0
	// as unset, which means 15 s.
	DefaultLockDelay = time.Second
	// DefaultLockTolerance is how long a Consul outage may last before a
	// held lock is given up.
	DefaultLockTolerance = 30 * time.Second
	// DefaultLockWait bounds one blocking wait for a lock, and so how long
	// Hold takes to notice that its ctx ended while waiting.
	DefaultLockWait = 5 * time.Second
)

// lockMonitorRetry is the interval of a held lock's retries during a
// Consul outage; DefaultLockTolerance / lockMonitorRetry retries are made.
const lockMonitorRetry = time.Second

// MemberOptions configure Join.
type MemberOptions struct {
	// ID identifies the member among its peers, such as host-pid.
	// Required; the service ID is ServiceWorker + "-" + ID.
	ID string
	// TTL of the member's check. Default DefaultMemberTTL.
	TTL time.Duration
	// LockDelay of its session. Default DefaultLockDelay.
	LockDelay time.Duration
	// LockTolerance: a Consul outage shorter than this does not release a
	// held lock. Default DefaultLockTolerance.
	LockTolerance time.Duration
}

// Member is a process in Consul that can hold leases: a ServiceWorker
// registration with its own TTL check, and a session bound to that check
// (and to the agent's node) that the member recreates whenever Consul
// invalidated it.
type Member struct {
	c    *Consul
	reg  *Registration
	opts MemberOptions

	mu      sync.Mutex // guards session
	session string
}

// Join registers a member and marks its check passing. Close leaves.
func (c *Consul) Join(ctx context.Context, opts MemberOptions) (*Member, error) {
	if opts.ID == "" {
		return nil, errors.New("join consul: member ID is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultMemberTTL
	}
	if opts.LockDelay <= 0 {
		opts.LockDelay = DefaultLockDelay
	}
	if opts.LockTolerance <= 0 {
		opts.LockTolerance = DefaultLockTolerance
	}
	reg, err := c.registerTTL(ctx, &api.AgentServiceRegistration{
		ID:   ServiceWorker + "-" + opts.ID,
		Name: ServiceWorker,
		Meta: map[string]string{"worker": opts.ID},
	}, opts.TTL)
	if err != nil {
		return nil, fmt.Errorf("join consul as %s: %w", opts.ID, err)
	}
	return &Member{c: c, reg: reg, opts: opts}, nil
}

// ID is the member's ID.
func (m *Member) ID() string { return m.opts.ID }

// Session returns the member's current session, creating one (its check
// marked passing first, which Consul requires) if it has none.
func (m *Member) Session(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session != "" {
		return m.session, nil
	}
	if err := m.reg.Pass(ctx); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	id, _, err := m.c.api.Session().Create(&api.SessionEntry{
		Name:          ServiceWorker + " " + m.opts.ID,
		LockDelay:     m.opts.LockDelay,
		Behavior:      api.SessionBehaviorRelease,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: []api.ServiceCheck{{ID: m.reg.CheckID()}},
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("create consul session: %w", err)
	}
	m.session = id
	m.c.log.Info("consul session created", "member", m.opts.ID, "session", id, "lock_delay", m.opts.LockDelay)
	return id, nil
}

// verify forgets session id if Consul no longer knows it (invalidated by
// its check, or lost); it keeps it when Consul cannot be asked.
func (m *Member) verify(ctx context.Context, id string) {
	se, _, err := m.c.api.Session().Info(id, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || se != nil {
		return
	}
	m.mu.Lock()
	if m.session == id {
		m.session = ""
		m.c.log.Warn("consul session invalidated; a new one will be created", "member", m.opts.ID, "session", id)
	}
	m.mu.Unlock()
}

// Hold runs until ctx ends. It waits for the lock at key (writing value
// into it, such as the member's ID) and, each time it acquires it, calls
// held with a context that ends the moment the lock is lost (session
// invalidated, key taken, or Consul unreachable for longer than
// LockTolerance) or ctx ends. When held returns, Hold releases the lock if
// it still holds it and, unless ctx ended, waits for it again. held must
// return promptly once its context ends, having stopped the work the lock
// guards.
func (m *Member) Hold(ctx context.Context, key string, value []byte, held func(ctx context.Context)) {
	backoff := time.Second
	log := m.c.log.With("lock", key, "member", m.opts.ID)
	for ctx.Err() == nil {
		sid, err := m.Session(ctx)
		if err != nil {
			log.Warn("cannot create a session for the lock; retrying", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		lock, err := m.c.api.LockOpts(&api.LockOptions{
			Key:              key,
			Value:            value,
			Session:          sid,
			MonitorRetries:   int(m.opts.LockTolerance / lockMonitorRetry),
			MonitorRetryTime: lockMonitorRetry,
			LockWaitTime:     DefaultLockWait,
		})
		if err != nil {
			log.Error("bad lock options", "err", err)
			return
		}
		lost, err := lock.Lock(ctx.Done())
		if err != nil {
			log.Warn("cannot acquire lock; retrying", "err", err, "retry_in", backoff)
			m.verify(ctx, sid)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		if lost == nil { // ctx ended while waiting
			return
		}
		backoff = time.Second
		log.Info("lock acquired", "session", sid)
		hctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lost:
				if ctx.Err() == nil {
					log.Warn("lock lost", "session", sid)
				}
				cancel()
			case <-hctx.Done():
			}
		}()
		held(hctx)
		cancel()
		select {
		case <-lost:
			m.verify(context.WithoutCancel(ctx), sid)
		default:
		}
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		m.unlock(uctx, key, sid)
		ucancel()
		log.Info("lock released")
	}
}

// unlock releases key if session sid still holds it.
func (m *Member) unlock(ctx context.Context, key, sid string) {
	m.c.api.KV().Release(&api.KVPair{Key: key, Session: sid, Flags: api.LockFlagValue}, (&api.WriteOptions{}).WithContext(ctx))
}

// Close destroys the member's session (releasing any lock still held) and
// deregisters it.
func (m *Member) Close(ctx context.Context) error {
	m.mu.Lock()
	sid := m.session
	m.session = ""
	m.mu.Unlock()
	var errs []error
	if sid != "" {
		if _, err := m.c.api.Session().Destroy(sid, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("destroy consul session %s: %w", sid, err))
		}
	}
	if err := m.reg.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
