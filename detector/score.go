package detector

import (
	"sort"
)

// Unit is one independent observation of SoftEther in a session.
type Unit struct {
	Class  Class
	Flow   int64
	Main   Evidence   // the reading (or behaviour) the unit stands on
	Extra  []Evidence // the flow's corroborators added to it
	Score  float32
	Strong bool
	Count  int // units it stands for: 2 for self-proving evidence
}

// Scored is a session's evidence read under the rules of Kinds.
type Scored struct {
	Total  float32
	Count  int // units, self-proving ones counting twice
	Units  []Unit
	Used   []Evidence // what the units rest on, strongest first
	Anchor Evidence   // the evidence whose flow an alert names
	OK     bool       // enough units, one strong, an anchor
}

// Alerts says whether the session's evidence raises an alert.
func (s Scored) Alerts() bool { return s.OK && s.Total >= Threshold }

// flowEv is what one flow contributed, by class.
type flowEv struct {
	id       int64
	start    int64 // flow start, unix ns (ordering and burst window)
	readings []Evidence
	corr     map[Kind]Evidence
	second   []Evidence
	sust     []Evidence
	sustLong []Evidence
	side     []Evidence
	self     []Evidence
}

func weight(e Evidence) float32 { return SpecOf(e.Kind).Weight }

// strongest returns evs sorted by weight, strongest first (stable).
func strongest(evs []Evidence) []Evidence {
	sort.SliceStable(evs, func(i, j int) bool { return weight(evs[i]) > weight(evs[j]) })
	return evs
}

// CanAlert is a necessary condition of Score(evs).Alerts(), checked
// without scoring: an alert rests on a strong unit, and only evidence of a
// strong kind makes one. Most sessions never hold any (corroborators on
// ordinary TLS), and scoring them on every new piece was a measurable part
// of many-flow traffic.
func CanAlert(evs []Evidence) bool {
	for i := range evs {
		if SpecOf(evs[i].Kind).Strong {
			return true
		}
	}
	return false
}

// Score reads a session's evidence as units. Each flow adds at most one
// reading unit (its strongest qualified reading plus its corroborators,
// capped at UnitCap), and at most one unit per other class; a kind that is
// not PerFlow counts in one unit of the session only; side flows count only
// beside another unit and near a reading flow's start. An alert needs
// MinUnits units, one of them strong, and a score of Threshold.
func Score(evs []Evidence) Scored {
	byFlow := map[int64]*flowEv{}
	var order []*flowEv
	// An additional connection counts beside a sustained unit, or beside
	// a primary reading on another flow that started shortly before it.
	behaviour, hasTCP := false, false
	var primaryStarts []int64
	for _, e := range evs {
		hasTCP = hasTCP || e.Flow.Proto == 6
		spec := SpecOf(e.Kind)
		fe := byFlow[e.Flow.ID]
		if fe == nil {
			fe = &flowEv{id: e.Flow.ID, start: e.Flow.Start.UnixNano(), corr: map[Kind]Evidence{}}
			byFlow[e.Flow.ID] = fe
			order = append(order, fe)
		}
		switch spec.Class {
		case ClassReading:
			fe.readings = append(fe.readings, e)
			if spec.Strong {
				primaryStarts = append(primaryStarts, fe.start)
			}
		case ClassCorroborator:
			if old, ok := fe.corr[e.Kind]; !ok || weight(e) > weight(old) {
				fe.corr[e.Kind] = e
			}
		case ClassSecondReading:
			fe.second = append(fe.second, e)
		case ClassSustained:
			fe.sust = append(fe.sust, e)
			behaviour = true
		case ClassSustainedLong:
			fe.sustLong = append(fe.sustLong, e)
			behaviour = true
		case ClassSideFlow:
			fe.side = append(fe.side, e)
		case ClassSelfProving:
			fe.self = append(fe.self, e)
			behaviour = true
		}
	}
	for _, fe := range order {
		var q []Evidence
		for _, e := range fe.readings {
			if !SpecOf(e.Kind).NeedsPrimary || behaviour || afterPrimary(fe.start, primaryStarts) {
				q = append(q, e)
			}
		}
		fe.readings = strongest(q)
		strongest(fe.second)
		strongest(fe.sust)
		strongest(fe.sustLong)
		strongest(fe.side)
		strongest(fe.self)
	}
	// Flows with the strongest readings choose first; ties go to the
	// earlier flow, so the result does not depend on arrival order.
	sort.SliceStable(order, func(i, j int) bool {
		wi, wj := bestWeight(order[i].readings), bestWeight(order[j].readings)
		if wi != wj {
			return wi > wj
		}
		if order[i].start != order[j].start {
			return order[i].start < order[j].start
		}
		return order[i].id < order[j].id
	})

	var sc Scored
	used := map[Kind]int{}
	// take uses a flow's strongest evidence of a class, if its kind may
	// still count; never a weaker reading of the same records instead.
	take := func(evs []Evidence) (Evidence, bool) {
		if len(evs) == 0 {
			return Evidence{}, false
		}
		e := evs[0]
		limit := 1
		if SpecOf(e.Kind).PerFlow {
			limit = 2
		}
		if used[e.Kind] >= limit {
			return Evidence{}, false
		}
		used[e.Kind]++
		return e, true
	}
	add := func(u Unit) {
		spec := SpecOf(u.Main.Kind)
		u.Score += spec.Weight
		u.Strong = spec.Strong
		if u.Count == 0 {
			u.Count = 1
		}
		u.Score = min(u.Score, UnitCap)
		sc.Units = append(sc.Units, u)
	}
	var readingStarts []int64
	for _, fe := range order {
		if e, ok := take(fe.readings); ok {
			u := Unit{Class: ClassReading, Flow: fe.id, Main: e}
			kinds := make([]Kind, 0, len(fe.corr))
			for k := range fe.corr {
				kinds = append(kinds, k)
			}
			sort.Slice(kinds, func(i, j int) bool {
				return weight(fe.corr[kinds[i]]) > weight(fe.corr[kinds[j]]) || (weight(fe.corr[kinds[i]]) == weight(fe.corr[kinds[j]]) && kinds[i] < kinds[j])
			})
			for _, k := range kinds {
				u.Extra = append(u.Extra, fe.corr[k])
				u.Score += weight(fe.corr[k])
			}
			add(u)
			readingStarts = append(readingStarts, fe.start)
		}
	}
	for _, fe := range order {
		if e, ok := take(fe.second); ok {
			add(Unit{Class: ClassSecondReading, Flow: fe.id, Main: e})
		}
		if e, ok := take(fe.sust); ok {
			add(Unit{Class: ClassSustained, Flow: fe.id, Main: e})
		}
		if e, ok := take(fe.sustLong); ok {
			add(Unit{Class: ClassSustainedLong, Flow: fe.id, Main: e})
		}
		if e, ok := take(fe.self); ok {
			if hasTCP {
				// Beside a TCP connection of the same pair it is the
				// connect race the client runs over ICMP/DNS while TCP
				// connects: one unit, so the TCP connection's reading
				// decides the session (and its signature).
				add(Unit{Class: ClassSelfProving, Flow: fe.id, Main: e})
			} else {
				// The session's own transport: many packets each way, each
				// carrying SoftEther's framing, independent observations.
				add(Unit{Class: ClassSelfProving, Flow: fe.id, Main: e, Count: 2})
				sc.Units[len(sc.Units)-1].Score = weight(e) // not capped: it stands alone
			}
		}
	}
	if len(sc.Units) > 0 {
		inUnit := map[int64]bool{}
		for _, u := range sc.Units {
			inUnit[u.Flow] = true
		}
		for _, fe := range order {
			if inUnit[fe.id] {
				continue // a side flow is a separate flow
			}
			var near []Evidence
			for _, e := range fe.side {
				if nearReading(e.Time.UnixNano(), readingStarts) {
					near = append(near, e)
				}
			}
			if e, ok := take(near); ok {
				add(Unit{Class: ClassSideFlow, Flow: fe.id, Main: e})
			}
		}
	}
	sort.SliceStable(sc.Units, func(i, j int) bool { return sc.Units[i].Score > sc.Units[j].Score })
	strong := false
	bestRank := -1.0
	for _, u := range sc.Units {
		sc.Total += u.Score
		sc.Count += u.Count
		strong = strong || u.Strong
		sc.Used = append(sc.Used, u.Main)
		sc.Used = append(sc.Used, u.Extra...)
		if u.Class == ClassSideFlow {
			continue
		}
		if r := anchorRank(u); r > bestRank {
			bestRank, sc.Anchor = r, u.Main
		}
	}
	sc.OK = strong && sc.Count >= MinUnits && bestRank >= 0
	return sc
}

func bestWeight(evs []Evidence) float32 {
	if len(evs) == 0 {
		return 0
	}
	return weight(evs[0])
}

// afterPrimary: a flow that started within AdditionalWindow after a
// primary reading's flow (or up to BurstWindow before it: the tap can see
// the legs' SYNs out of order) can be that session's additional connection.
func afterPrimary(t int64, starts []int64) bool {
	for _, s := range starts {
		if d := t - s; d >= -int64(BurstWindow) && d <= int64(AdditionalWindow) {
			return true
		}
	}
	return false
}

func nearReading(t int64, starts []int64) bool {
	w := int64(BurstWindow)
	for _, s := range starts {
		if d := t - s; d >= -w && d <= w {
			return true
		}
	}
	return false
}

// anchorRank prefers TCP session flows over UDP, reading units (the
// connection's own connect phase) over behaviour, stronger over weaker.
func anchorRank(u Unit) float64 {
	r := float64(u.Score)
	if u.Main.Flow.Proto == 6 {
		r += 10
	}
	if u.Class == ClassReading {
		r += 5
	}
	if u.Strong {
		r += 2
	}
	return r
}
