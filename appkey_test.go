package apiguard

import (
	"errors"
	"testing"
)

func TestAppKeyErrorsMatchKeyReasons(t *testing.T) {
	if !errors.Is(errNoAppKey, ErrMissingAppKey) || !errors.Is(errNoAppKey, ErrMissingKey) || errors.Is(errNoAppKey, ErrInvalidKey) {
		t.Error("missing app key does not match its reasons")
	}
	if !errors.Is(errBadAppKey, ErrInvalidAppKey) || !errors.Is(errBadAppKey, ErrInvalidKey) || errors.Is(errBadAppKey, ErrMissingKey) {
		t.Error("invalid app key does not match its reasons")
	}
	if e := NewError(errBadAppKey); e.Status != 401 || e.Code != "invalid_app_key" {
		t.Errorf("NewError: %d %s", e.Status, e.Code)
	}
	if _, err := New(AppKey(nil)); err == nil {
		t.Error("AppKey(nil) accepted")
	}
}
