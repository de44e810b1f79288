package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// CompileFilter compiles a tcpdump-syntax filter for a link type into
// classic BPF by asking Debian's tcpdump (libpcap's compiler) through a
// header-only pcap file of that link type: no interface is opened and no
// cgo is needed.
func CompileFilter(expr string, link uint32) ([]bpf.Instruction, error) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, errors.New("filter: compiling BPF filters needs tcpdump (apt-get install tcpdump)")
	}
	tmp, err := os.CreateTemp("", "sewatch-filter-*.pcap")
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	defer os.Remove(tmp.Name())
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], link)
	if _, err := tmp.Write(h[:]); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("filter: %w", err)
	}
	tmp.Close()
	out, err := exec.Command(tcpdump, "-r", tmp.Name(), "-ddd", expr).Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("filter %q: %s", expr, msg)
	}
	return parseDDD(string(out))
}

// parseDDD reads tcpdump -ddd output: a count line, then "code jt jf k".
func parseDDD(s string) ([]bpf.Instruction, error) {
	rows := strings.Split(strings.TrimSpace(s), "\n")
	if len(rows) < 2 {
		return nil, fmt.Errorf("filter: unexpected compiler output %q", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(rows[0]))
	if err != nil || n != len(rows)-1 {
		return nil, fmt.Errorf("filter: unexpected compiler output %q", s)
	}
	raw := make([]bpf.RawInstruction, 0, n)
	for _, r := range rows[1:] {
		f := strings.Fields(r)
		if len(f) != 4 {
			return nil, fmt.Errorf("filter: bad instruction %q", r)
		}
		var v [4]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("filter: bad instruction %q", r)
			}
		}
		raw = append(raw, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, errors.New("filter: program uses instructions the Go BPF VM cannot run")
	}
	return prog, nil
}

// rawFilter is the compiled program in the form SO_ATTACH_FILTER takes.
func rawFilter(prog []bpf.Instruction) ([]bpf.RawInstruction, error) {
	return bpf.Assemble(prog)
}
