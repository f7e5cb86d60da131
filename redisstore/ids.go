package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiguard/apiguard"
)

var _ apiguard.ReplayStore = (*IDStore)(nil)

// IDStore remembers unique request ids in Redis for a while, so that every
// replica of a server refuses an id any of them has seen. An id is kept
// under
//
//	<prefix>rid:<namespace>:<SHA-256 of the id, base64url>
//
// so a caller's id, whatever its length, costs Redis one short key until
// its time to live runs out.
//
// It is an apiguard.ReplayStore: give it to Guard.RequestID so that every
// replica refuses an id any of them has seen. Seen and Forget return an
// error, within the timeout (WithTimeout), when Redis fails. An IDStore is
// safe for concurrent use.
type IDStore struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewIDStore returns an IDStore that keeps its ids in rdb.
func NewIDStore(rdb redis.UniversalClient, opts ...Option) (*IDStore, error) {
	c, err := newConfig(rdb, opts)
	if err != nil {
		return nil, err
	}
	return &IDStore{rdb: rdb, prefix: c.prefix, timeout: c.timeout}, nil
}

// Seen records id in namespace (a client, an API) for ttl, rounded up to a
// whole millisecond, and reports whether it is fresh: true the first time,
// false while an earlier record lives. It is one atomic SET NX, so of
// several requests with one id, on any replicas, exactly one is fresh.
func (s *IDStore) Seen(ctx context.Context, namespace, id string, ttl time.Duration) (fresh bool, err error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: ttl %v, want a positive duration", ttl)
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	fresh, err = s.rdb.SetNX(ctx, s.key(namespace, id), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: %w", err)
	}
	return fresh, nil
}

// Forget removes id from namespace, so that it is fresh again (RequestID
// calls it when a later check refuses the request that recorded the id).
// Forgetting an id that is not held is not an error.
func (s *IDStore) Forget(ctx context.Context, namespace, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Del(ctx, s.key(namespace, id)).Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// key is the Redis key of id in namespace. The digest has a fixed length,
// so no namespace and id can make another pair's key.
func (s *IDStore) key(namespace, id string) string {
	return s.prefix + "rid:" + namespace + ":" + digest(id)
}
