package elasticsearch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sewatch/sewatch/outputs"
)

// Check implements outputs.Checker: it authenticates against the cluster
// (GET /_security/_authenticate, falling back to GET / on a cluster
// without security) with the configured credentials and TLS settings. No
// template is installed and nothing is indexed.
func (opener) Check(ctx context.Context, s outputs.Spec) error {
	o, err := options(s)
	if err != nil {
		return err
	}
	off := false
	o.TemplateInstall = &off
	out, err := Open(ctx, o, "elasticsearch output", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer out.Close(ctx)
	res, err := out.es.Security.Authenticate(out.es.Security.Authenticate.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cluster %s unreachable: %w", strings.Join(o.Addresses, ","), err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	switch {
	case res.StatusCode == 401 || res.StatusCode == 403:
		return fmt.Errorf("cluster %s refused the credentials (HTTP %d): %s", strings.Join(o.Addresses, ","), res.StatusCode, reason(body))
	case res.StatusCode < 300:
		return nil
	}
	// Security disabled (or an older/compatible server): a plain GET / tells
	// whether the cluster answers at all.
	info, err := out.es.Info(out.es.Info.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cluster %s unreachable: %w", strings.Join(o.Addresses, ","), err)
	}
	defer info.Body.Close()
	if info.StatusCode == 401 || info.StatusCode == 403 {
		return fmt.Errorf("cluster %s refused the credentials (HTTP %d)", strings.Join(o.Addresses, ","), info.StatusCode)
	}
	if info.StatusCode >= 300 {
		return fmt.Errorf("cluster %s answered HTTP %d", strings.Join(o.Addresses, ","), info.StatusCode)
	}
	return nil
}
