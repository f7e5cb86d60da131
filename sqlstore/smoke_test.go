package sqlstore

import (
	"context"
	"testing"

	"github.com/apiguard/apiguard"
)

func TestSmoke(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.url(t))
		ctx := context.Background()
		key, info, err := s.Issue(ctx, "ops", NewKey{Prefix: "sk_test_", Client: apiguard.Client{ID: "m1", Scopes: []string{"a", "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v %+v", info, c)
	})
}
