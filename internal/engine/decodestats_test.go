package engine

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/sewatch/sewatch/internal/decode"
)

// TestDecodeStats: ARP is counted as not IP (not invalid), a VXLAN-wrapped
// capture's tunnel layer is counted, both reach the stats event (valid
// against Suricata's schema), and frames not decoded are listed by kind.
func TestDecodeStats(t *testing.T) {
	c := &collector{}
	e := newEngine(t, c)
	w := e.NewWorker(decode.LinkEthernet)
	frames := loadCapture(t, "se-direct-443.pcap")
	arp := append(append([]byte{}, frames[0].data[:12]...), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	// Each frame of the capture, also wrapped in VXLAN: the inner flows are
	// the same, so the alert is unchanged.
	vx := func(inner []byte) []byte {
		udp := append([]byte{0xc3, 0x50, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0}, inner...)
		udp[4], udp[5] = byte(len(udp)>>8), byte(len(udp))
		ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 9, 9, 1, 10, 9, 9, 2}
		ip[2], ip[3] = byte((20+len(udp))>>8), byte(20+len(udp))
		return append(append(append([]byte{}, frames[0].data[:12]...), 0x08, 0x00), append(ip, udp...)...)
	}
	n := uint64(0)
	for i, f := range frames {
		n++
		w.Process(vx(f.data), f.ts, n)
		if i%100 == 0 {
			n++
			w.Process(arp, f.ts, n)
		}
	}
	w.Finish()
	e.SendStats()
	if e.C.Invalid.Load() != 0 || e.C.NonIP.Load() != 10 {
		t.Errorf("invalid %d, not IP %d; want 0 and 10", e.C.Invalid.Load(), e.C.NonIP.Load())
	}
	if e.Verdict().Alerts() != 1 {
		t.Errorf("%d alerts through VXLAN, want 1", e.Verdict().Alerts())
	}
	last := c.recs[len(c.recs)-1]
	if p := os.Getenv("SEWATCH_SURICATA_SCHEMA"); p != "" {
		validate(t, compileSchema(t, p), last.JSON, "Suricata EVE schema")
	}
	var ev struct {
		Stats struct {
			Decoder map[string]any
		}
	}
	json.Unmarshal(last.JSON, &ev)
	if ev.Stats.Decoder["arp"] != float64(10) || ev.Stats.Decoder["vxlan"] != float64(len(frames)) || ev.Stats.Decoder["invalid"] != float64(0) {
		t.Errorf("decoder stats %v", ev.Stats.Decoder)
	}
	u := e.Undecoded()
	if len(u) != 1 || u[0].N != 10 || u[0].String() != "ARP (ethertype 0x0806)" {
		t.Errorf("undecoded %v", u)
	}
}
