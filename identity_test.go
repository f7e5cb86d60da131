package apiguard

import (
	"strings"
	"testing"
)

// TestEnvironmentOf pins the grammar of key prefixes: anchored at the start,
// whole segments only, the first rule deciding. A "_test_" or "_live_"
// further in does not count (a live key named live_acme_test_x is live).
func TestEnvironmentOf(t *testing.T) {
	for key, want := range map[string]Environment{
		// The seeds' keys.
		"sandbox_sk_test_demo_clientA_full": Sandbox, "live_sk_demo_clientA": Live,
		"sk_test_a1b2c3d4e5f6g7h8": Sandbox, "sk_live_demo00000000": Live,
		"SB-Mid-server-demo123456": Sandbox, "SB-Mid-client-demo123456": Sandbox, "Mid-server-abc": Live,
		"topup_demo_key_gold": AnyEnvironment, "demo-app-key": AnyEnvironment,
		// Other tags.
		"pk_test_1": Sandbox, "pk_live_1": Live, "whsec_test_1": Sandbox, "x_live_y": Live, "test_x": Sandbox,
		// The first rule decides; nothing further in counts.
		"live_acme_test_x": Live, "sandbox_sk_live_x": Sandbox, "acme_prod_test_x": AnyEnvironment,
		"topup_key_live_x": AnyEnvironment, "key_test_": AnyEnvironment,
		// Whole segments, followed by more of the key.
		"sk_testing_x": AnyEnvironment, "livekey_x": AnyEnvironment, "sandboxed_x": AnyEnvironment,
		"sk_test": AnyEnvironment, "live_": AnyEnvironment, "sandbox": AnyEnvironment, "SB-": AnyEnvironment,
		"Mid-": AnyEnvironment, "sb-x": AnyEnvironment, "SK_TEST_x": AnyEnvironment, "verylongtag_test_x": AnyEnvironment,
		"sk_sandbox_x": AnyEnvironment, "": AnyEnvironment, "_test_x": AnyEnvironment,
	} {
		if got := EnvironmentOf(key); got != want {
			t.Errorf("%q: %v, want %v", key, got, want)
		}
	}
}

// FuzzEnvironmentOf checks the grammar's invariants on any key: a key whose
// environment is known keeps it whatever follows its prefix, and no key
// that starts with neither a rule's prefix nor a tag has one.
func FuzzEnvironmentOf(f *testing.F) {
	for _, k := range []string{"sandbox_sk_test_x", "sk_live_1", "SB-Mid-x", "live_acme_test_x", "a_test_b"} {
		f.Add(k, "_x")
	}
	f.Fuzz(func(t *testing.T, key, more string) {
		env := EnvironmentOf(key)
		if env != AnyEnvironment && EnvironmentOf(key+more) != env {
			t.Fatalf("%q is %v, %q is %v", key, env, key+more, EnvironmentOf(key+more))
		}
		if env != AnyEnvironment && !strings.HasPrefix(key, "SB-") && !strings.HasPrefix(key, "Mid-") {
			first, _, _ := strings.Cut(key, "_")
			if envWord(first) == AnyEnvironment && !isTag(first) {
				t.Fatalf("%q has an environment, its first segment %q is no tag", key, first)
			}
		}
	})
}
