package redistest

import "syscall"

// procAttr makes redis-server die with the test binary, should it crash
// before stopping the server.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
