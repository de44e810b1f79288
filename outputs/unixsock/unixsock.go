// Package unixsock writes EVE lines to a Unix socket, as Suricata's eve-log
// does with `filetype: unix_stream` or `unix_dgram`: the socket belongs to
// the consumer (DCSO fever, Logstash's or Vector's unix input, a local
// forwarder), which listens on it; sewatch connects. On a stream socket
// every event is one line; on a datagram socket every event is one
// datagram, without the newline, as Suricata sends them.
//
// The connection is made at the first write and made again after any
// error, so a consumer started after sewatch, or restarted under it, is
// found again; the batch that failed is retried by the router's shared
// policy (back-off, then drop-and-count live or the spool). A stream cut
// while a batch was being written may leave the consumer with part of a
// line, which it drops; the retry sends the whole batch again.
package unixsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/sewatch/sewatch/outputs"
)

func init() { outputs.Register("unix", opener{}) }

// Options are the unix output's settings in the config file.
type Options struct {
	// Path is the consumer's socket (-o unix:/run/fever/in.sock).
	Path string `yaml:"path"`
	// Mode is "stream" (default, Suricata's unix_stream) or "dgram"
	// (unix_dgram).
	Mode string `yaml:"mode"`
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
		return o, errors.New("unix output needs the consumer's socket path (-o unix:/run/fever/in.sock)")
	}
	switch o.Mode {
	case "":
		o.Mode = "stream"
	case "stream", "dgram":
	default:
		return o, fmt.Errorf("unix output: mode %q is neither stream nor dgram", o.Mode)
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
		name = "unix:" + o.Path
	}
	return New(o, name, log), nil
}

// Check implements outputs.Checker: something listens on the socket (a
// stream consumer sees a connection that sends nothing).
func (opener) Check(ctx context.Context, s outputs.Spec) error {
	o, err := options(s)
	if err != nil {
		return err
	}
	c, err := dial(ctx, o)
	if err != nil {
		return fmt.Errorf("unix output %s: %w", o.Path, err)
	}
	return c.Close()
}

// network is the Go network name of a mode.
func network(mode string) string {
	if mode == "dgram" {
		return "unixgram"
	}
	return "unix"
}

func dial(ctx context.Context, o Options) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network(o.Mode), o.Path)
}

// writeTimeout bounds one batch's write to a consumer that stopped
// reading, so the router's policy (not a blocked write) decides.
const writeTimeout = 10 * time.Second

// Output is a connection to a consumer's Unix socket.
type Output struct {
	mu   sync.Mutex
	opt  Options
	name string
	log  *slog.Logger
	conn net.Conn
	w    *bufio.Writer
}

// New returns an output for the socket in o (connected at the first
// write).
func New(o Options, name string, log *slog.Logger) *Output {
	return &Output{opt: o, name: name, log: log}
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Identity implements outputs.Identifier: the socket's absolute path.
func (o *Output) Identity() string {
	p, err := filepath.Abs(o.opt.Path)
	if err != nil {
		p = o.opt.Path
	}
	return "unix:" + p
}

// Write implements outputs.Output.
func (o *Output) Write(ctx context.Context, batch []outputs.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		c, err := dial(ctx, o.opt)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		o.conn = c
		if o.opt.Mode == "stream" {
			o.w = bufio.NewWriterSize(c, 64<<10)
		}
		o.log.Info("connected to the consumer's socket", "output", o.name)
	}
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	o.conn.SetWriteDeadline(deadline)
	var err error
	if o.opt.Mode == "dgram" {
		for _, r := range batch {
			if _, err = o.conn.Write(r.JSON); err != nil {
				break
			}
		}
	} else {
		for _, r := range batch {
			o.w.Write(r.JSON)
			o.w.WriteByte('\n')
		}
		err = o.w.Flush()
	}
	if err != nil {
		// Connect again at the next write (the consumer restarted, or
		// will): the router retries this batch.
		o.conn.Close()
		o.conn, o.w = nil, nil
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		return nil
	}
	var err error
	if o.w != nil {
		err = o.w.Flush()
	}
	if cerr := o.conn.Close(); err == nil {
		err = cerr
	}
	o.conn, o.w = nil, nil
	return err
}
