package engine

import (
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/outputs"
)

// frame is one captured Ethernet frame.
type frame struct {
	ts   time.Time
	data []byte
}

func loadCapture(t testing.TB, name string) []frame {
	t.Helper()
	f, err := os.Open(filepath.Join(pcapDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []frame
	for {
		d, ci, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		out = append(out, frame{ci.Timestamp, d})
	}
}

func runFrames(t *testing.T, fr []frame) []outputs.Record {
	c := &collector{}
	e := newEngine(t, c)
	w := e.NewWorker(decode.LinkEthernet)
	for i, f := range fr {
		w.Process(f.data, f.ts, uint64(i+1))
	}
	w.Finish()
	return c.recs
}

// Transformations of real captures into conditions the bundled files do
// not show: the detectors must not depend on addresses, ports, link
// framing, or on seeing every packet.

func addVLAN(fr []frame, id uint16) []frame {
	out := make([]frame, len(fr))
	for i, f := range fr {
		d := make([]byte, 0, len(f.data)+4)
		d = append(d, f.data[:12]...)
		d = append(d, 0x81, 0x00, byte(id>>8), byte(id))
		d = append(d, f.data[12:]...)
		out[i] = frame{f.ts, d}
	}
	return out
}

// toIPv6 rewrites every IPv4 TCP/UDP packet as IPv6 (addresses mapped into
// 2001:db8::/96); ICMP and non-first fragments are dropped, as an IPv6-only
// path would not carry SoftEther's IPv4 ICMP probes.
func toIPv6(fr []frame) []frame {
	var out []frame
	for _, f := range fr {
		d := f.data
		if len(d) < 34 || binary.BigEndian.Uint16(d[12:]) != 0x0800 {
			continue
		}
		ip := d[14:]
		ihl := int(ip[0]&15) * 4
		proto := ip[9]
		fragOff := binary.BigEndian.Uint16(ip[6:]) & 0x1fff
		if (proto != 6 && proto != 17) || fragOff != 0 || len(ip) < ihl {
			continue
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || total < ihl {
			total = len(ip)
		}
		l4 := ip[ihl:total]
		v6 := make([]byte, 14+40+len(l4))
		copy(v6, d[:12])
		binary.BigEndian.PutUint16(v6[12:], 0x86dd)
		h := v6[14:]
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
		h[6], h[7] = proto, 64
		copy(h[8:], []byte{0x20, 0x01, 0x0d, 0xb8})
		copy(h[20:24], ip[12:16])
		copy(h[24:], []byte{0x20, 0x01, 0x0d, 0xb8})
		copy(h[36:40], ip[16:20])
		copy(h[40:], l4)
		out = append(out, frame{f.ts, v6})
	}
	return out
}

// natClient rewrites one IPv4 address (both directions) and shifts its ports.
func natClient(fr []frame, from, to [4]byte, portShift uint16) []frame {
	out := make([]frame, len(fr))
	for i, f := range fr {
		d := append([]byte(nil), f.data...)
		out[i] = frame{f.ts, d}
		if len(d) < 34 || binary.BigEndian.Uint16(d[12:]) != 0x0800 {
			continue
		}
		ip := d[14:]
		ihl := int(ip[0]&15) * 4
		fragOff := binary.BigEndian.Uint16(ip[6:]) & 0x1fff
		l4ok := (ip[9] == 6 || ip[9] == 17) && fragOff == 0 && len(ip) >= ihl+4
		for _, at := range []struct{ addr, port int }{{12, 0}, {16, 2}} {
			if [4]byte(ip[at.addr:at.addr+4]) == from {
				copy(ip[at.addr:], to[:])
				if l4ok {
					p := binary.BigEndian.Uint16(ip[ihl+at.port:])
					binary.BigEndian.PutUint16(ip[ihl+at.port:], p+portShift)
				}
			}
		}
	}
	return out
}

// oneWay keeps only packets sent by one IPv4 address (an asymmetric tap).
func oneWay(fr []frame, src [4]byte) []frame {
	var out []frame
	for _, f := range fr {
		if len(f.data) >= 30 && binary.BigEndian.Uint16(f.data[12:]) == 0x0800 && [4]byte(f.data[26:30]) == src {
			out = append(out, f)
		}
	}
	return out
}

// tcpPorts keeps only the untagged IPv4 TCP packets whose source or
// destination port is one of ports (any port when none are given): the
// connections alone, without the connect burst's UDP and ICMP flows.
func tcpPorts(fr []frame, ports ...uint16) []frame {
	var out []frame
	for _, f := range fr {
		d := f.data
		if len(d) < 38 || binary.BigEndian.Uint16(d[12:]) != 0x0800 || d[23] != 6 {
			continue
		}
		tcp := d[14+int(d[14]&0x0f)*4:]
		sp, dp := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:])
		keep := len(ports) == 0
		for _, p := range ports {
			keep = keep || sp == p || dp == p
		}
		if keep {
			out = append(out, f)
		}
	}
	return out
}

func dropFirst(fr []frame, d time.Duration) []frame {
	var out []frame
	for _, f := range fr {
		if f.ts.Sub(fr[0].ts) >= d {
			out = append(out, f)
		}
	}
	return out
}

func lossy(fr []frame, rate float64, seed int64) []frame {
	r := rand.New(rand.NewSource(seed))
	var out []frame
	for _, f := range fr {
		if r.Float64() >= rate {
			out = append(out, f)
		}
	}
	return out
}

// mix interleaves b, shifted to start with a, by timestamp.
func mix(a, b []frame) []frame {
	shift := a[0].ts.Sub(b[0].ts)
	out := append([]frame(nil), a...)
	for _, f := range b {
		out = append(out, frame{f.ts.Add(shift), f.data})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ts.Before(out[j].ts) })
	return out
}

type verdictLine struct {
	alertLine
	Metadata struct {
		Mode []string `json:"softether_mode"`
	}
}

func TestTransformedCaptures(t *testing.T) {
	direct := loadCapture(t, "se-direct-443.pcap")
	idle := loadCapture(t, "se-idle-keepalive.pcap")
	longpoll := loadCapture(t, "neg-https-longpoll.pcap")
	ssh := loadCapture(t, "neg-ssh-interactive.pcap")
	clear := loadCapture(t, "lab-encrypt-off.pcap")
	clearLate := loadCapture(t, "lab-encrypt-off-late.pcap")
	lcli, lsrv := "198.18.201.2", "198.18.202.2"
	cli, srv := "198.18.1.2", "198.18.2.2"
	tests := []struct {
		name       string
		frames     []frame
		wantAlert  bool
		wantSrc    string // client address the alert must name
		wantDst    string
		wantSIDAny []int
	}{
		{"vlan tagged", addVLAN(direct, 42), true, cli, srv, []int{8700001}},
		{"qinq", addVLAN(addVLAN(direct, 42), 7), true, cli, srv, []int{8700001}},
		{"ipv6 only", toIPv6(direct), true, "2001:0db8:0000:0000:0000:0000:c612:0102", "2001:0db8:0000:0000:0000:0000:c612:0202", []int{8700001}},
		{"client behind nat", natClient(direct, [4]byte{198, 18, 1, 2}, [4]byte{203, 0, 113, 9}, 1111), true, "203.0.113.9", srv, []int{8700001}},
		{"3% loss", lossy(direct, 0.03, 1), true, cli, srv, []int{8700001, 8700005}},
		{"8% loss", lossy(direct, 0.08, 2), true, cli, srv, []int{8700001, 8700005}},
		{"joined 5 s into the session", dropFirst(direct, 5*time.Second), true, cli, srv, []int{8700005, 8700009}},
		{"idle session joined after 30 s", dropFirst(idle, 30*time.Second), true, cli, srv, []int{8700005, 8700009}},
		{"idle session joined late, ipv6", toIPv6(dropFirst(idle, 30*time.Second)), true, "2001:0db8:0000:0000:0000:0000:c612:0102", "2001:0db8:0000:0000:0000:0000:c612:0202", []int{8700005, 8700009}},
		{"mixed with long-polling https", mix(direct, longpoll), true, cli, srv, []int{8700001}},
		{"asymmetric tap: client side only", oneWay(direct, [4]byte{198, 18, 1, 2}), true, cli, srv, []int{8700001}},
		{"asymmetric tap: long-polling client side only", oneWay(longpoll, [4]byte{198, 19, 1, 2}), false, "", "", nil},
		{"long-polling https alone, vlan", addVLAN(longpoll, 5), false, "", "", nil},
		{"ssh, lossy", lossy(ssh, 0.05, 3), false, "", "", nil},
		{"long-polling joined late", dropFirst(longpoll, 3*time.Second), false, "", "", nil},
		// Encryption off: the tunnel in clear after the login. Without the
		// connect burst's probes, one connection's connect phase plus its
		// cleartext tunnel alert; joined late, two connections in clear
		// do; one connection joined late, in clear alone, does not.
		{"encryption off, one connection, no probes", tcpPorts(clear), true, lcli, lsrv, []int{8700001}},
		{"encryption off, joined late", clearLate, true, lcli, lsrv, []int{8700009}},
		{"encryption off, joined late, vlan", addVLAN(clearLate, 9), true, lcli, lsrv, []int{8700009}},
		{"encryption off, one connection joined late", tcpPorts(clearLate, 47858), false, "", "", nil},
		{"encryption off, connect phase cut off", tcpPorts(dropFirst(clear, 500*time.Millisecond)), false, "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := runFrames(t, tc.frames)
			var soft []verdictLine
			for _, r := range recs {
				var v verdictLine
				if err := json.Unmarshal(r.JSON, &v); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(v.Alert.Signature, "SoftEther") {
					soft = append(soft, v)
				}
			}
			if !tc.wantAlert {
				if len(soft) != 0 {
					t.Fatalf("unexpected SoftEther alert: %+v", soft[0])
				}
				return
			}
			if len(soft) == 0 {
				t.Fatalf("no SoftEther alert (%d records)", len(recs))
			}
			a := soft[0]
			okSID := false
			for _, s := range tc.wantSIDAny {
				okSID = okSID || s == sidOf(t, recs[0].JSON)
			}
			if a.SrcIP != tc.wantSrc || a.DestIP != tc.wantDst || !okSID {
				t.Errorf("alert %s -> %s sid %d, want %s -> %s one of %v", a.SrcIP, a.DestIP, sidOf(t, recs[0].JSON), tc.wantSrc, tc.wantDst, tc.wantSIDAny)
			}
		})
	}
}

func sidOf(t *testing.T, b []byte) int {
	var v struct {
		Alert struct {
			SID int `json:"signature_id"`
		} `json:"alert"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Alert.SID
}
