package apiguard

import (
	"testing"
)

func TestEnvironmentOf(t *testing.T) {
	for key, want := range map[string]Environment{
		"sandbox_sk_test_x": Sandbox, "sk_test_a1": Sandbox, "SB-Mid-server-1": Sandbox, "pk_test_1": Sandbox,
		"live_sk_x": Live, "sk_live_1": Live, "pk_live_1": Live, "x_live_y": Live,
		"topup_demo_key_gold": AnyEnvironment, "": AnyEnvironment,
	} {
		if got := EnvironmentOf(key); got != want {
			t.Errorf("%q: %v, want %v", key, got, want)
		}
	}
}
