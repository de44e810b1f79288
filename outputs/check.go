package outputs

import (
	"context"
	"fmt"
)

// Checker is implemented by output types that can verify, without side
// effects (no file created, no template installed, nothing produced), that
// an output can run: its destination is reachable and accepts the
// configured credentials. --check-config uses it.
type Checker interface {
	Check(ctx context.Context, s Spec) error
}

// Check validates s and, when its type implements Checker, checks the
// destination. An output type without a Checker passes once valid.
func Check(ctx context.Context, s Spec) error {
	o, err := lookup(s.Type)
	if err != nil {
		return err
	}
	if err := o.Validate(s); err != nil {
		return err
	}
	c, ok := o.(Checker)
	if !ok {
		return nil
	}
	if err := c.Check(ctx, s); err != nil {
		return fmt.Errorf("%w", err)
	}
	return nil
}
