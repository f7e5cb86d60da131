package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Open creates the SQLite file and its schema; a postgres:// URL works
	// the same way.
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "keys.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// Put a cache in front of the store, and tell it of every change made
	// by any replica; give cache to the Guard as its KeyStore.
	cache, err := apiguard.NewCachedKeyStore(st)
	if err != nil {
		log.Fatal(err)
	}
	w, err := st.Watch(sqlstore.Invalidate(cache))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	key, info, err := st.Issue(ctx, "alice", sqlstore.NewKey{
		Prefix: "sk_test_",
		Client: apiguard.Client{ID: "merchant-42", KeyID: "key_1", Scopes: []string{"payment:create"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(key, "sk_test_"), info.Client.Env, info.Status(info.CreatedAt))

	c, err := cache.Lookup(ctx, key)
	fmt.Println(c.ID, c.KeyID, c.Scopes, err)

	if err := st.Revoke(ctx, "bob", "key_1"); err != nil {
		log.Fatal(err)
	}
	_, err = st.Lookup(ctx, key)
	fmt.Println(errors.Is(err, apiguard.ErrInvalidKey))
	// Within a poll interval (500 ms on SQLite, milliseconds on
	// PostgreSQL), the watcher makes the cache forget key_1 too.

	w.Close()
	trail, _ := st.Audit(ctx, "merchant-42")
	for _, e := range trail {
		fmt.Println(e.Action, e.KeyID, e.Actor)
	}
	// Output:
	// true sandbox active
	// merchant-42 key_1 [payment:create] <nil>
	// true
	// issue key_1 alice
	// revoke key_1 bob
}
