package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/sqlstore"
)

// forgetful is a cache's Forget, for the example: what a cache whose
// Forget takes a key id would do.
type forgetful struct {
	mu     sync.Mutex
	forgot []string
}

func (f *forgetful) Forget(keyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, keyID)
}

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

	// Tell the cache in front of the store of every change, from any
	// replica.
	cache := &forgetful{}
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

	c, err := st.Lookup(ctx, key)
	fmt.Println(c.ID, c.KeyID, c.Scopes, err)

	if err := st.Revoke(ctx, "bob", "key_1"); err != nil {
		log.Fatal(err)
	}
	_, err = st.Lookup(ctx, key)
	fmt.Println(errors.Is(err, apiguard.ErrInvalidKey))

	w.Close() // waits for the watcher, which polls every 500 ms
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
