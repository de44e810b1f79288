package main

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Exit statuses (documented in the README).
const (
	exitOK      = 0 // the input was read to its end (or a live capture was stopped by a signal)
	exitFailure = 1 // a runtime failure: unreadable or damaged input, a capture or output that failed
	exitUsage   = 2 // a bad command line or configuration: nothing was read
	// exitUndelivered (3, delivery.go): a capture file was read to its end
	// but some output did not deliver every event.
	// A capture file interrupted by a signal exits 128 + the signal's
	// number, as a shell reports it: 130 for SIGINT, 143 for SIGTERM.
	exitSignalBase = 128
)

// usageError marks a bad command line or configuration (exit 2). A nil
// cause means the message was already printed (by the flag package).
type usageError struct{ err error }

func (u usageError) Error() string {
	if u.err == nil {
		return "bad usage"
	}
	return u.err.Error()
}
func (u usageError) Unwrap() error { return u.err }

func usage(err error) error { return usageError{err} }

// interrupted is a capture file's run stopped early by a signal, after
// everything read before it was processed and delivered.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return fmt.Sprintf("interrupted by %v", i.sig) }

// exitStatus prints err (its credentials hidden) and maps it to a status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ie interrupted
	if errors.As(err, &ie) {
		return exitSignalBase + int(ie.sig) // already logged with its counters
	}
	var ud undeliveredError
	if errors.As(err, &ud) {
		code := exitUndelivered
		if ud.cause != nil {
			code = exitStatus(ud.cause, stderr)
		}
		for _, l := range ud.lines {
			fmt.Fprintf(stderr, "sewatch: %s\n", redactURL(l))
		}
		return code
	}
	var ue usageError
	if errors.As(err, &ue) {
		if ue.err != nil {
			fmt.Fprintf(stderr, "sewatch: %s\n", redactURL(ue.err.Error()))
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "sewatch: %s\n", redactURL(err.Error()))
	return exitFailure
}
