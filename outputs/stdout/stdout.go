// Package stdout is the default output: EVE lines on standard output, one
// JSON object per line, flushed after every batch so a pipe sees alerts at
// once.
package stdout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/sewatch/sewatch/outputs"
)

func init() { outputs.Register("stdout", opener{}) }

type opener struct{}

func (opener) Validate(s outputs.Spec) error {
	if s.Arg != "" {
		return fmt.Errorf("stdout output takes no argument (got %q)", s.Arg)
	}
	return outputs.DecodeOptions(s, &struct{}{})
}

func (opener) Open(_ context.Context, s outputs.Spec, _ *slog.Logger) (outputs.Output, error) {
	return New(os.Stdout, s.Name), nil
}

// Output writes EVE lines to a writer.
type Output struct {
	mu   sync.Mutex
	name string
	w    *bufio.Writer
}

// New returns an output writing to w.
func New(w io.Writer, name string) *Output {
	if name == "" {
		name = "stdout"
	}
	return &Output{name: name, w: bufio.NewWriterSize(w, 64<<10)}
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Write implements outputs.Output.
func (o *Output) Write(_ context.Context, batch []outputs.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range batch {
		o.w.Write(r.JSON)
		o.w.WriteByte('\n')
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Flush()
}
