package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sewatch/sewatch/outputs"
)

// Check implements outputs.Checker: the file, or the nearest existing
// directory it would be created in, must be writable. Nothing is created.
func (opener) Check(_ context.Context, s outputs.Spec) error {
	o, err := options(s)
	if err != nil {
		return err
	}
	if st, err := os.Stat(o.Path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("file output %s is a directory", o.Path)
		}
		if err := unix.Access(o.Path, unix.W_OK); err != nil {
			return fmt.Errorf("file output %s is not writable: %w", o.Path, err)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("file output: %w", err)
	}
	dir := filepath.Dir(o.Path)
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("file output %s: %s is not a directory", o.Path, dir)
			}
			if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("file output %s: cannot create it in %s: %w", o.Path, dir, err)
			}
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("file output %s: %w", o.Path, err)
		}
		dir = parent
	}
}
