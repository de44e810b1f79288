package main

import (
	"fmt"
	"log/slog"
	"os/user"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropPrivileges switches the whole process to name's uid, gid and groups
// once the capture sockets are open: those sockets stay usable, nothing
// else keeps root. Changing uid from 0 to non-zero clears every capability
// (permitted, effective and ambient) as the kernel does by default; the
// bounding set is emptied first so no later exec can regain one.
func dropPrivileges(name string, log *slog.Logger) error {
	if name == "" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--user %s: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		// prctl acts on one thread; AllThreadsSyscall reaches every thread
		// but is refused in cgo builds, then the calling thread at least.
		// EINVAL for capabilities this kernel lacks is harmless: setuid
		// below clears the permitted and effective sets regardless.
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e == syscall.ENOTSUP {
			_ = unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		}
	}
	// No exec after this point may gain privileges (setuid or file caps).
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e == syscall.ENOTSUP {
		_ = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
	// syscall (not x/sys/unix) applies these to every thread of the process.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("--user %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("--user %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("--user %s: setuid: %w", name, err)
	}
	if unix.Getuid() != uid || unix.Geteuid() != uid || unix.Getgid() != gid {
		return fmt.Errorf("--user %s: still uid %d gid %d after the switch", name, unix.Geteuid(), unix.Getgid())
	}
	log.Info("privileges dropped", "user", name, "uid", uid, "gid", gid)
	return nil
}
