//go:build !linux

package redisstore

import "syscall"

// procAttr returns nil: the server is stopped by TestMain.
func procAttr() *syscall.SysProcAttr { return nil }
