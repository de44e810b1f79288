package connectphase

import "testing"

// TestSeparations: the detectors tell messages apart by these spans, so the
// orderings they rely on must hold.
func TestSeparations(t *testing.T) {
	checks := []struct {
		name string
		ok   bool
	}{
		{"an admin login or additional_connect is shorter than any login", AddConnect.Hi < Login.Lo},
		{"the watermark is longer than the GET probe", GetProbe.Hi < Watermark.Lo},
		{"admin answers reach below additional_connect answers", AdminAnswer.Lo < AddResponse.Lo && AdminAnswer.Hi == AddResponse.Hi},
		{"every span is ordered", GetProbe.Lo <= GetProbe.Hi && Page403.Lo <= Page403.Hi && Watermark.Lo <= Watermark.Hi &&
			Hello.Lo <= Hello.Hi && Login.Lo <= Login.Hi && Welcome.Lo <= Welcome.Hi && AddConnect.Lo <= AddConnect.Hi},
	}
	for _, c := range checks {
		if !c.ok {
			t.Error(c.name)
		}
	}
	if w := Hello.Widen(39, 105); w.Lo != Hello.Lo+39 || w.Hi != Hello.Hi+105 || !w.Has(Hello.Hi+100) || w.Has(Hello.Lo) {
		t.Errorf("Widen: %+v", w)
	}
}
