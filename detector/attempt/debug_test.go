package attempt

import (
	"os"
	"testing"
)

func TestDebugReplay(t *testing.T) {
	path := os.Getenv("ATTEMPT_PCAP")
	if path == "" {
		t.Skip()
	}
	s, flows := replay(t, path)
	for k, f := range flows {
		in, ok := f.in.(*Inspector)
		if !ok || in == nil {
			continue
		}
		t.Logf("%v->%v fp=%v stage=%d profile=%v up=%v live=%v done=%v segs=%d sizes=%v", k.a, k.b, in.connectFP, in.stage, in.profile, in.up, in.live, in.done, in.segs, in.fl.Sizes(nil))
	}
	for _, e := range s.ev {
		t.Log(e.Detail)
	}
}
