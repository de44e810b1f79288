// Package vpngate reads VPN Gate's public server list (the CSV its public
// API serves: a "*vpn_servers" line, a "#HostName,IP,..." header, one row
// per server, a final "*"). The list deliberately mixes in innocent
// addresses, so it is used only to corroborate an alert, never to raise one.
package vpngate

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// List maps listed addresses to their VPN Gate host names.
type List map[netip.Addr]string

// Load reads a list file.
func Load(path string) (List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vpngate list: %w", err)
	}
	defer f.Close()
	l, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("vpngate list %s: %w", path, err)
	}
	return l, nil
}

// Parse reads the CSV format. Rows whose IP column does not parse are
// skipped; a file without the header is an error.
func Parse(r io.Reader) (List, error) {
	br := bufio.NewReader(r)
	var lines []string
	header := -1
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			if strings.HasPrefix(line, "#HostName,") {
				header = len(lines)
			}
			lines = append(lines, line)
		}
		if err != nil {
			break
		}
	}
	if header < 0 {
		return nil, errors.New("no #HostName,IP,... header line")
	}
	out := List{}
	rd := csv.NewReader(strings.NewReader(strings.Join(lines[header+1:], "\n")))
	rd.FieldsPerRecord = -1
	rd.LazyQuotes = true
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			continue
		}
		if len(rec) < 2 || rec[0] == "*" {
			continue
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(rec[1])); err == nil {
			out[a.Unmap()] = strings.TrimSpace(rec[0])
		}
	}
	return out, nil
}
