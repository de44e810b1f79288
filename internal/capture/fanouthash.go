package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// The live workers' fanout: which socket of a group gets a packet.
//
// The kernel's own flow hash (PACKET_FANOUT_HASH) is symmetric in the
// addresses and ports, but for ESP it takes the SPI as the ports and for AH
// the SPI behind its first word, and each direction of an SA has an SPI of
// its own: the two directions of an IPsec SA went to two workers, each
// kept a flow of one direction and raised the SA's alert again (measured:
// the first 300,000 packets of the mix replayed live, 16 ESP/AH alerts
// with one worker, 23 with two, the 7 more each an SA's reverse
// direction). UDP tunnels (VXLAN, GENEVE) split the same way: each
// endpoint picks the outer source port of its own direction. So the
// sockets run a classic BPF program of sewatch's own (PACKET_FANOUT_CBPF)
// that hashes the IP address pair only, as Suricata's eBPF load balancer
// does: every packet between two hosts reaches one worker, whatever the
// protocol, and so does every flow of a session (the verdict reads a
// session per host pair). The cost is balance: a sensor whose traffic is
// mostly one host pair loads one worker.
//
// The kernel runs the program before the packet reaches any socket, with
// the link-layer header already taken off on receive but not on send (a
// packet the sensor's own host sends). So the program loads relative to
// the network header (SKF_NET_OFF), whatever the link type, and asks the
// kernel which protocol that header is (SKF_AD_PROTOCOL, behind any VLAN
// tag the kernel took off). Anything that is not IPv4 or IPv6 (ARP, a
// second VLAN tag the kernel left in) goes to the first worker. The kernel
// takes the result modulo the group's size.

// netOff is SKF_NET_OFF: a load at netOff+k reads byte k of the network
// header.
const netOff = 0xfff00000 // -0x100000

// fanoutHashProgram returns the program.
func fanoutHashProgram() []bpf.Instruction {
	const memSum = 0 // the sum of the address words so far
	var a bpfAsm
	a.add(bpf.LoadExtension{Num: bpf.ExtProto})
	a.jumpIf(0x0800, "ipv4", "")
	a.jumpIf(0x86dd, "ipv6", "other")
	a.label("other")
	a.add(bpf.RetConstant{Val: 0})

	// IPv4: the source and destination addresses, 12 and 16 bytes in.
	a.label("ipv4")
	a.add(bpf.LoadAbsolute{Off: netOff + 12, Size: 4},
		bpf.StoreScratch{Src: bpf.RegA, N: memSum},
		bpf.LoadAbsolute{Off: netOff + 16, Size: 4},
		bpf.LoadScratch{Dst: bpf.RegX, N: memSum},
		bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.jump("mix")

	// IPv6: the eight words of the two addresses, 8-39 bytes in.
	a.label("ipv6")
	a.add(bpf.LoadAbsolute{Off: netOff + 8, Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: memSum})
	for off := uint32(12); off < 40; off += 4 {
		a.add(bpf.LoadAbsolute{Off: netOff + off, Size: 4},
			bpf.LoadScratch{Dst: bpf.RegX, N: memSum},
			bpf.ALUOpX{Op: bpf.ALUOpAdd},
			bpf.StoreScratch{Src: bpf.RegA, N: memSum})
	}

	// A = the sum of the address words, the same both ways: mixed, so that
	// the low bits the kernel's modulo keeps depend on every bit of it.
	a.label("mix")
	a.add(bpf.TAX{},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x9e3779b1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.RetA{})
	return a.resolve()
}

// bpfAsm assembles a classic BPF program with forward jumps to labels.
type bpfAsm struct {
	ins    []bpf.Instruction
	labels map[string]int
	// jumps: instruction index -> its targets ("" is the next one).
	jumps map[int][2]string
}

func (a *bpfAsm) add(ins ...bpf.Instruction) { a.ins = append(a.ins, ins...) }

func (a *bpfAsm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

// jumpIf jumps to onTrue if A == val, else to onFalse.
func (a *bpfAsm) jumpIf(val uint32, onTrue, onFalse string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{onTrue, onFalse}
	a.ins = append(a.ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: val})
}

// jump always jumps to target.
func (a *bpfAsm) jump(target string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{target, ""}
	a.ins = append(a.ins, bpf.Jump{})
}

func (a *bpfAsm) resolve() []bpf.Instruction {
	skip := func(from int, label string) uint32 {
		if label == "" {
			return 0
		}
		to, ok := a.labels[label]
		if !ok || to <= from {
			panic(fmt.Sprintf("bpf: jump from %d to %q (%d) is not forward", from, label, to))
		}
		return uint32(to - from - 1)
	}
	for i, t := range a.jumps {
		switch j := a.ins[i].(type) {
		case bpf.JumpIf:
			j.SkipTrue, j.SkipFalse = uint8(skip(i, t[0])), uint8(skip(i, t[1]))
			a.ins[i] = j
		case bpf.Jump:
			j.Skip = skip(i, t[0])
			a.ins[i] = j
		}
	}
	return a.ins
}
