//go:build !linux

package redistest

import "syscall"

// procAttr returns nil: the server is stopped by Stop.
func procAttr() *syscall.SysProcAttr { return nil }
