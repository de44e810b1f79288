package kafkaout

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sewatch/sewatch/outputs"
)

// Check implements outputs.Checker: it asks the brokers for the topic's
// metadata over the configured TLS and SASL, so unreachable brokers, a
// refused password and a missing topic are all reported. Nothing is produced.
func (opener) Check(ctx context.Context, s outputs.Spec) error {
	o, err := options(s)
	if err != nil {
		return err
	}
	name := "kafka output " + o.Topic
	out, err := build(o, name, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer out.Close(ctx)
	if err := out.checkTopic(ctx); err != nil {
		return fmt.Errorf("brokers %v: %w", o.Brokers, err)
	}
	return nil
}
