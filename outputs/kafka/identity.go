package kafkaout

import "strings"

// Identity implements outputs.Identifier: brokers and topic name the
// destination (and the output's spool directory), not its place in -o.
func (o *Output) Identity() string {
	return "kafka:" + strings.Join(o.opt.Brokers, ",") + "/" + o.opt.Topic
}
