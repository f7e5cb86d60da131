//go:build !linux

package pgtest

import "syscall"

// procAttr returns attributes with no parent-death signal: the server is
// stopped by Stop.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
