package kafkaout

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sewatch/sewatch/outputs"
)

// The default partitioner puts a key where the Java client's default
// partitioner does: toPositive(murmur2(key)) % partitions. The hashes are
// the Java client's own murmur2 test vectors (UtilsTest.testMurmur2).
func TestMurmur2MatchesJavaPartitioner(t *testing.T) {
	vectors := []struct {
		key  string
		hash int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
		{"1", -1993445489},
		{"12345", -1188365604},
	}
	b, err := balancer("")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 7, 12, 1000} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for _, v := range vectors {
			want := int(uint32(v.hash)&0x7fffffff) % n
			if got := b.Balance(kafka.Message{Key: []byte(v.key)}, parts...); got != want {
				t.Errorf("key %q over %d partitions: %d, Java client: %d", v.key, n, got, want)
			}
		}
	}
}

func TestPartitionerOption(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"", true}, {"murmur2", true}, {"crc32", true}, {"fnv1a", true}, {"random", false}} {
		_, err := options(outputs.Spec{Type: "kafka", Arg: "k:9092/t", Options: map[string]any{"partitioner": tc.in}})
		if (err == nil) != tc.ok {
			t.Errorf("partitioner %q: %v", tc.in, err)
		}
	}
}

// The message carries no capture time: kafka-go stamps it when producing,
// so broker retention counts from delivery. The compression default is snappy.
func TestMessageTimeAndCompressionDefault(t *testing.T) {
	o := &Output{}
	m := o.Message(outputs.Record{Type: "alert", Time: time.Unix(1000, 0), Key: "1:x", JSON: []byte(`{}`)})
	if !m.Time.IsZero() {
		t.Fatalf("message time %v: the capture time must stay in EVE only", m.Time)
	}
	c, err := compression("")
	if err != nil || c != kafka.Snappy {
		t.Fatalf("default compression %v, %v", c, err)
	}
}
