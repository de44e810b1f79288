//go:build !linux

package capture

import "os"

// mapFile does not map files here: blocks are read with pread.
func mapFile(*os.File, int64, bool) []byte { return nil }

func dropPages([]byte) {}

func unmapFile([]byte) {}
