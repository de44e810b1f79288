// Package outputs defines the sinks EVE lines are delivered to and the one
// routing policy they share: a bounded queue per output, batching, retry with
// back-off, and (in live mode) drop-and-count instead of blocking capture.
//
// Outputs know nothing about EVE structs: they receive immutable JSON lines.
package outputs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Record is one EVE event ready for delivery. JSON is a complete EVE object
// without the trailing newline and is never mutated after Send.
type Record struct {
	Type        string    // EVE event_type ("alert", "stats")
	Time        time.Time // event time (packet time)
	FlowID      int64     // 0 for flow-less events
	Key         string    // partition / routing key: community_id, else flow_id
	ID          string    // stable event id (deterministic, used as _id / dedup key)
	SignatureID int       // alert.signature_id, 0 for non-alerts
	JSON        []byte
}

// Output is a sink. Write blocks until the batch is delivered or ctx is done;
// it returns an error when the batch was not (fully) delivered, and the
// Router then applies the shared retry policy. Close flushes and releases.
type Output interface {
	Name() string
	Write(ctx context.Context, batch []Record) error
	Close(ctx context.Context) error
}

// Spec describes one configured output: its type ("stdout", "file", "kafka",
// "elasticsearch"), the short argument from `-o TYPE:ARG`, and the rest of
// its settings from the config file (may be nil).
type Spec struct {
	Type    string         `yaml:"type"`
	Arg     string         `yaml:"arg"`
	Options map[string]any `yaml:"options"`
	// Types are the EVE event types the output takes (alert, flow,
	// stats), as Suricata's eve-log `types`; empty: all of them.
	Types []string `yaml:"types"`
	// Name is a unique label for logs and stats, e.g. "outputs[1] (kafka)".
	Name string `yaml:"-"`
}

// Opener validates a Spec without I/O (Validate) and opens the output (Open).
type Opener interface {
	Validate(s Spec) error
	Open(ctx context.Context, s Spec, log *slog.Logger) (Output, error)
}

var (
	regMu    sync.Mutex
	registry = map[string]Opener{}
)

// Register makes an output type available. A duplicate name panics at init.
func Register(typ string, o Opener) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("outputs: duplicate output type " + typ)
	}
	registry[typ] = o
}

// Types lists the registered output types, sorted.
func Types() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var ts []string
	for t := range registry {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// ErrUnknownType is returned for an output type nobody registered.
var ErrUnknownType = errors.New("unknown output type")

func lookup(typ string) (Opener, error) {
	regMu.Lock()
	defer regMu.Unlock()
	o, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownType, typ, strings.Join(typesLocked(), ", "))
	}
	return o, nil
}

func typesLocked() []string {
	var ts []string
	for t := range registry {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// ParseFlag turns `-o TYPE[:ARG]` into a Spec.
func ParseFlag(v string) (Spec, error) {
	typ, arg, _ := strings.Cut(v, ":")
	typ = strings.TrimSpace(typ)
	if typ == "" {
		return Spec{}, fmt.Errorf("output %q: empty type", v)
	}
	return Spec{Type: typ, Arg: arg}, nil
}

// Validate checks a Spec against its registered type without I/O.
func Validate(s Spec) error {
	o, err := lookup(s.Type)
	if err != nil {
		return err
	}
	if err := checkTypes(s.Types); err != nil {
		return err
	}
	return o.Validate(s)
}

// EventTypes are the EVE event types sewatch writes.
var EventTypes = []string{"alert", "flow", "stats"}

func checkTypes(ts []string) error {
	for _, t := range ts {
		if !slices.Contains(EventTypes, t) {
			return fmt.Errorf("types: %q is not an event type sewatch writes (%s)", t, strings.Join(EventTypes, ", "))
		}
	}
	return nil
}

// Open opens the output a Spec describes.
func Open(ctx context.Context, s Spec, log *slog.Logger) (Output, error) {
	o, err := lookup(s.Type)
	if err != nil {
		return nil, err
	}
	if err := Validate(s); err != nil {
		return nil, err
	}
	return o.Open(ctx, s, log)
}

// DecodeOptions decodes a Spec's options strictly (unknown keys are errors)
// into v. A nil node leaves v untouched.
func DecodeOptions(s Spec, v any) error {
	if len(s.Options) == 0 {
		return nil
	}
	// Round-trip through a strict decoder so unknown keys are errors.
	b, err := yaml.Marshal(s.Options)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s options: %w", s.Type, err)
	}
	return nil
}
