// Package all links every output into the binary; each output with
// dependencies of its own (Kafka, Elasticsearch) has its own file so it can
// be compiled out with a build tag. This file: the outputs on the standard
// library alone.
package all

import (
	_ "github.com/sewatch/sewatch/outputs/file"      // file output
	_ "github.com/sewatch/sewatch/outputs/stdout"    // stdout output
	_ "github.com/sewatch/sewatch/outputs/syslogout" // syslog output
	_ "github.com/sewatch/sewatch/outputs/unixsock"  // unix socket output
)
