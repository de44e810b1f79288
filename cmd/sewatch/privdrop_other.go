//go:build !linux

package main

import (
	"errors"
	"log/slog"
)

// dropPrivileges: live capture exists on Linux only.
func dropPrivileges(name string, _ *slog.Logger) error {
	if name == "" {
		return nil
	}
	return errors.New("--user is supported on Linux only")
}
