// Command corescale measures how far this machine itself scales from one
// core to two on work shaped like a sensor's: random reads and writes over
// a table, one table per goroutine, nothing shared. scripts/bench-ratio.sh
// prints it beside sewatch's 1 -> 2 worker scaling, so the two can be
// read together.
//
// Why: a virtual machine's two cores can share a cache or memory bandwidth
// with each other and with other guests. Work that stays in a core's own
// cache then doubles with two cores, while work that misses it (a flow
// table of tens of thousands of flows does) gets slower per core when both
// run, and no program can scale past what the machine gives.
//
// For each table size it times one goroutine, then two (each goroutine
// doing the same number of steps), -runs times, and prints the median
// scaling, 2 x t(one) / t(two): 2.0 when the cores do not disturb each
// other.
//
//	go run ./scripts/corescale [-runs 5] [-steps 40000000] [-sizes 256K,8M,64M] [-modes touched,fresh]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	runs := flag.Int("runs", 5, "runs of one goroutine, each followed by one of two, per size")
	steps := flag.Int("steps", 40_000_000, "table steps per goroutine and run")
	sizes := flag.String("sizes", "256K,8M,64M", "table sizes per goroutine (K or M suffix)")
	modes := flag.String("modes", "touched,fresh", "touched: tables touched before the clock starts; fresh: new memory, first touch measured")
	flag.Parse()
	if *runs < 1 || *steps < 1 {
		fmt.Fprintln(os.Stderr, "corescale: -runs and -steps must be at least 1")
		os.Exit(2)
	}
	if runtime.GOMAXPROCS(0) < 2 {
		fmt.Fprintln(os.Stderr, "corescale: fewer than two cores to use")
		os.Exit(1)
	}
	// Every argument is checked before anything is measured.
	var words []int
	for _, s := range strings.Split(*sizes, ",") {
		w, err := tableWords(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "corescale: size %q: %v\n", s, err)
			os.Exit(2)
		}
		words = append(words, w)
	}
	for _, m := range strings.Split(*modes, ",") {
		if m != "touched" && m != "fresh" {
			fmt.Fprintf(os.Stderr, "corescale: mode %q: not touched or fresh\n", m)
			os.Exit(2)
		}
	}
	for i, s := range strings.Split(*sizes, ",") {
		for _, m := range strings.Split(*modes, ",") {
			report(s, words[i], *runs, *steps, m == "fresh")
		}
	}
}

// report measures one table size, its tables touched before the clock
// starts or (fresh) taken new from the system inside the measured run.
func report(size string, words, runs, steps int, fresh bool) {
	var ratios []float64
	var best1, best2 time.Duration
	for i := 0; i < runs; i++ {
		t1 := timed(1, words, steps, fresh)
		t2 := timed(2, words, steps, fresh)
		ratios = append(ratios, 2*t1.Seconds()/t2.Seconds())
		if best1 == 0 || t1 < best1 {
			best1 = t1
		}
		if best2 == 0 || t2 < best2 {
			best2 = t2
		}
	}
	sort.Float64s(ratios)
	what := "touched beforehand"
	if fresh {
		what = "fresh memory, first touch measured"
	}
	fmt.Printf("machine: random table walk over %s per core (%s): 1 -> 2 cores scale %.2f (median of %d; fastest %v one core, %v two)\n",
		size, what, ratios[len(ratios)/2], runs, best1.Round(time.Millisecond), best2.Round(time.Millisecond))
}

// tableWords turns "256K" or "8M" into a power-of-two count of 8-byte words.
func tableWords(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a size")
	}
	words := n * mult / 8
	if words < 1024 || words&(words-1) != 0 {
		return 0, fmt.Errorf("not a power of two of at least 8K")
	}
	return words, nil
}

var sink uint64

// timed runs par goroutines, each walking a table of its own, and returns
// the wall time of the slowest. Unless fresh, the tables are touched
// before the clock starts, so page faults are not measured; fresh tables
// are mapped inside the run and each first touch is a fault, as when a
// sensor's flow table grows.
func timed(par, words, steps int, fresh bool) time.Duration {
	tabs := make([][]uint64, par)
	if fresh {
		// Freed tables of earlier runs would come back already touched:
		// give them back to the system, and each goroutine makes its own.
		runtime.GC()
		debug.FreeOSMemory()
	}
	for i := range tabs {
		if fresh {
			continue
		}
		tabs[i] = make([]uint64, words)
		for j := range tabs[i] {
			tabs[i][j] = uint64(j)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for i := range tabs {
		wg.Add(1)
		go func(tab []uint64, seed uint64) {
			defer wg.Done()
			if tab == nil {
				tab = make([]uint64, words)
			}
			v := walk(tab, seed, steps)
			mu.Lock()
			sink += v
			mu.Unlock()
		}(tabs[i], uint64(i)*0x9e3779b97f4a7c15+88172645463325252)
	}
	wg.Wait()
	return time.Since(start)
}

// walk: xorshift steps, each reading and writing the table at a random
// place, the way a flow lookup and its state update touch memory.
func walk(tab []uint64, x uint64, steps int) uint64 {
	mask := uint64(len(tab) - 1)
	for i := 0; i < steps; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		tab[x&mask] += x
	}
	return x + tab[5]
}
