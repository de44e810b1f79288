package elasticsearch

import (
	"net/url"
	"strings"
)

// Identity implements outputs.Identifier: the cluster addresses (without
// credentials) and the data stream or index pattern.
func (o *Output) Identity() string {
	addrs := make([]string, 0, len(o.opt.Addresses))
	for _, a := range o.opt.Addresses {
		if u, err := url.Parse(a); err == nil {
			u.User = nil
			a = u.String()
		}
		addrs = append(addrs, strings.TrimRight(a, "/"))
	}
	target := o.opt.DataStream
	if target == "" {
		target = o.opt.Index
	}
	return "elasticsearch:" + strings.Join(addrs, ",") + "/" + target
}
