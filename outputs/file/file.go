// Package file appends EVE lines to a file, the way Suricata's eve.json is
// written: one object per line, reopened on SIGHUP so logrotate can move it,
// with optional size-based rotation (eve.json → eve.json.1 …).
//
// A write error (a full disk) is returned to the router, which retries the
// same batch; the file is truncated back to its last complete line first so
// a retry never leaves half a line behind.
package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/sewatch/sewatch/outputs"
)

func init() { outputs.Register("file", opener{}) }

// Options are the file output's settings in the config file.
type Options struct {
	Path string `yaml:"path"`
	// RotateBytes rotates the file when it would grow past this size (0: never).
	RotateBytes int64 `yaml:"rotate-bytes"`
	// Keep is how many rotated files to keep (default 5).
	Keep int `yaml:"keep"`
}

type opener struct{}

func options(s outputs.Spec) (Options, error) {
	var o Options
	if err := outputs.DecodeOptions(s, &o); err != nil {
		return o, err
	}
	if s.Arg != "" {
		o.Path = s.Arg
	}
	if o.Path == "" {
		return o, errors.New("file output needs a path (-o file:/var/log/sewatch/eve.json)")
	}
	if o.RotateBytes < 0 || o.Keep < 0 {
		return o, errors.New("file output: rotate-bytes and keep must not be negative")
	}
	if o.Keep == 0 {
		o.Keep = 5
	}
	return o, nil
}

func (opener) Validate(s outputs.Spec) error { _, err := options(s); return err }

func (opener) Open(_ context.Context, s outputs.Spec, log *slog.Logger) (outputs.Output, error) {
	o, err := options(s)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "file:" + o.Path
	}
	return Open(o, name, log)
}

// Output is an append-only EVE file.
type Output struct {
	mu   sync.Mutex
	opt  Options
	name string
	log  *slog.Logger
	f    *os.File
	size int64
}

// Open opens (creating directories as needed) the file for appending.
func Open(o Options, name string, log *slog.Logger) (*Output, error) {
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := &Output{opt: o, name: name, log: log}
	if err := out.open(); err != nil {
		return nil, err
	}
	return out, nil
}

func (o *Output) open() error {
	f, err := os.OpenFile(o.opt.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", o.name, err)
	}
	o.f, o.size = f, st.Size()
	return nil
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Reopen closes and reopens the file (SIGHUP after logrotate moved it).
func (o *Output) Reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Close()
	}
	return o.open()
}

// Write implements outputs.Output: the whole batch is written with one
// write call; on failure the file is cut back to where the batch began.
func (o *Output) Write(_ context.Context, batch []outputs.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		if err := o.open(); err != nil {
			return err
		}
	}
	n := 0
	for _, r := range batch {
		n += len(r.JSON) + 1
	}
	buf := make([]byte, 0, n)
	for _, r := range batch {
		buf = append(buf, r.JSON...)
		buf = append(buf, '\n')
	}
	if o.opt.RotateBytes > 0 && o.size > 0 && o.size+int64(len(buf)) > o.opt.RotateBytes {
		if err := o.rotate(); err != nil {
			return err
		}
	}
	start := o.size
	if _, err := o.f.Write(buf); err != nil {
		// Leave no partial line behind for the retry.
		if terr := o.f.Truncate(start); terr != nil {
			o.log.Warn("cannot cut back partial write", "output", o.name, "err", terr)
		}
		return fmt.Errorf("%s: %w", o.name, err)
	}
	o.size += int64(len(buf))
	return nil
}

func (o *Output) rotate() error {
	o.f.Close()
	o.f = nil
	for i := o.opt.Keep - 1; i >= 1; i-- {
		os.Rename(o.opt.Path+"."+strconv.Itoa(i), o.opt.Path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(o.opt.Path, o.opt.Path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: rotate: %w", o.name, err)
	}
	return o.open()
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil // a character device or pipe (/dev/stdout, a FIFO) has nothing to sync
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	return err
}
