// Package all links every output into the binary; each output has its own
// file so heavy ones can be compiled out with a build tag.
package all

import (
	_ "github.com/sewatch/sewatch/outputs/file"     // file output
	_ "github.com/sewatch/sewatch/outputs/stdout"   // stdout output
	_ "github.com/sewatch/sewatch/outputs/unixsock" // unix socket output
)
