package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionString is what --version prints: the module version, the VCS
// revision and time when the binary was built from a checkout, the Go
// version and the platform.
func versionString() string {
	version, rev, when, dirty := "(devel)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	s := "sewatch " + version
	if rev != "" {
		if dirty {
			rev += "-dirty"
		}
		s += fmt.Sprintf(" revision %s", rev)
		if when != "" {
			s += " (" + when + ")"
		}
	}
	return s + fmt.Sprintf(" %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
