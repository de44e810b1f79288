package kafkaout

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sewatch/sewatch/outputs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const topic = "sewatch-eve"

func cluster(t testing.TB, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// eveLine is an EVE alert like the engine's; i makes it unique, flow groups events.
func eveLine(i, flow int) outputs.Record {
	cid := "1:flow" + strconv.Itoa(flow) + "/dfYX//sFRy0h3Hzd7f+xjafo="
	js := fmt.Sprintf(`{"timestamp":"2026-11-22T11:11:12.%06d+0000","flow_id":%d,"event_type":"alert","src_ip":"10.0.%d.2","src_port":39086,"dest_ip":"198.18.2.2","dest_port":443,"proto":"TCP","community_id":%q,"alert":{"action":"allowed","gid":1,"signature_id":8700001,"rev":1,"signature":"SEWATCH SoftEther VPN session (direct TLS)","category":"Potential Corporate Privacy Violation","severity":1,"metadata":{"n":["%d"]}},"host":"sensor-1"}`,
		i%1000000, 1000+flow, flow%250, cid, i)
	return outputs.Record{Type: "alert", Time: time.Unix(1795000000, int64(i)*1000).UTC(), FlowID: int64(1000 + flow), Key: cid,
		ID: fmt.Sprintf("%032x", i), SignatureID: 8700001, JSON: []byte(js)}
}

// consume reads n records from the start of the topic.
func consume(t testing.TB, addr string, n int, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(got), n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		opts      map[string]any
		err       string
	}{
		{name: "flag", arg: "b1:9092,b2:9092/eve"},
		{name: "config", opts: map[string]any{"brokers": []any{"b1:9092"}, "topic": "eve", "compression": "zstd", "required-acks": "one",
			"batch-timeout": "20ms", "sasl": map[string]any{"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"},
			"tls": map[string]any{"ca-file": "/etc/ca.pem"}}},
		{name: "no topic", arg: "b1:9092/", err: "needs a topic"},
		{name: "no slash", arg: "b1:9092", err: "want HOST:PORT"},
		{name: "no port", arg: "b1/eve", err: "want HOST:PORT"},
		{name: "no brokers", opts: map[string]any{"topic": "eve"}, err: "needs brokers"},
		{name: "compression", arg: "b:1/t", opts: map[string]any{"compression": "brotli"}, err: "compression"},
		{name: "acks", arg: "b:1/t", opts: map[string]any{"required-acks": "two"}, err: "required-acks"},
		{name: "sasl", arg: "b:1/t", opts: map[string]any{"sasl": map[string]any{"mechanism": "GSSAPI", "username": "u", "password": "p"}}, err: "sasl mechanism"},
		{name: "sasl password", arg: "b:1/t", opts: map[string]any{"sasl": map[string]any{"mechanism": "PLAIN", "username": "u"}}, err: "password"},
		{name: "cert without key", arg: "b:1/t", opts: map[string]any{"tls": map[string]any{"cert-file": "c"}}, err: "go together"},
		{name: "unknown key", arg: "b:1/t", opts: map[string]any{"acks": "all"}, err: "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := outputs.Validate(outputs.Spec{Type: "kafka", Arg: tc.arg, Options: tc.opts})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
	o, _ := options(outputs.Spec{Type: "kafka", Arg: "b1:9092,b2:9092/eve"})
	if len(o.Brokers) != 2 || o.Topic != "eve" || o.BatchTimeout != time.Millisecond || o.RequiredAcks != "" {
		t.Errorf("defaults: %+v", o)
	}
}

func open(t testing.TB, spec outputs.Spec) *Output {
	t.Helper()
	out, err := outputs.Open(context.Background(), spec, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return out.(*Output)
}

// Events of one flow stay in one partition and in order; key and headers are set.
func TestProduceKeysHeadersOrder(t *testing.T) {
	addr := cluster(t)
	for _, comp := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			addr := addr
			if comp != "none" {
				addr = cluster(t) // a fresh topic per codec
			}
			o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Name: "outputs[0] (kafka)",
				Options: map[string]any{"compression": comp, "sensor-name": "sensor-1"}})
			const n = 600
			var batch []outputs.Record
			for i := 0; i < n; i++ {
				batch = append(batch, eveLine(i, i%17))
			}
			for i := 0; i < n; i += 100 {
				if err := o.Write(context.Background(), batch[i:i+100]); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := consume(t, addr, n)
			part := map[string]int32{}
			last := map[string]int{}
			for _, r := range got {
				k := string(r.Key)
				if p, ok := part[k]; ok && p != r.Partition {
					t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
				}
				part[k] = r.Partition
				id, _ := strconv.ParseInt(header(r, HeaderEventID), 16, 64)
				if prev, ok := last[k]; ok && int(id) <= prev {
					t.Fatalf("key %s: event %d after %d", k, id, prev)
				}
				last[k] = int(id)
				want := batch[id]
				if string(r.Value) != string(want.JSON) || k != want.Key {
					t.Fatalf("message %d differs", id)
				}
				if header(r, HeaderEventType) != "alert" || header(r, HeaderSignatureID) != "8700001" || header(r, HeaderSensorName) != "sensor-1" {
					t.Fatalf("headers %v", r.Headers)
				}
			}
			if len(part) != 17 {
				t.Errorf("%d keys", len(part))
			}
		})
	}
}

func TestKeyFallsBackToFlowID(t *testing.T) {
	o := &Output{sensor: "s"}
	m := o.Message(outputs.Record{Type: "alert", FlowID: 42, JSON: []byte("{}")})
	if string(m.Key) != "42" {
		t.Errorf("key %q", m.Key)
	}
	if m := o.Message(outputs.Record{Type: "stats", JSON: []byte("{}")}); m.Key != nil || len(m.Headers) != 2 {
		t.Errorf("stats message %+v", m)
	}
}

func TestMissingTopic(t *testing.T) {
	addr := cluster(t)
	_, err := outputs.Open(context.Background(), outputs.Spec{Type: "kafka", Arg: addr + "/nope", Name: "outputs[2] (kafka)"}, quiet)
	if err == nil || !strings.Contains(err.Error(), `outputs[2] (kafka): topic "nope" does not exist`) {
		t.Fatalf("err = %v", err)
	}
	// With auto-creation allowed (and a broker that allows it) the topic appears.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := open(t, outputs.Spec{Type: "kafka", Arg: c.ListenAddrs()[0] + "/" + topic, Options: map[string]any{"allow-auto-topic-creation": true}})
	defer o.Close(context.Background())
	if err := o.Write(context.Background(), []outputs.Record{eveLine(1, 1)}); err != nil {
		t.Fatal(err)
	}
}

// Unreachable brokers at start-up are not fatal (the spool holds events);
// writes fail fast so the router can spool.
func TestUnreachableBroker(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Name: "outputs[1] (kafka)"})
	defer o.Close(context.Background())
	start := time.Now()
	err := o.Write(context.Background(), []outputs.Record{eveLine(1, 1)})
	if err == nil || !strings.HasPrefix(err.Error(), "outputs[1] (kafka): ") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("write to a dead broker took %v", d)
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			addr := cluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "sewatch", "s3cret"))
			pwf := filepath.Join(t.TempDir(), "pw")
			os.WriteFile(pwf, []byte("s3cret\n"), 0o600)
			o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic,
				Options: map[string]any{"sasl": map[string]any{"mechanism": mech, "username": "sewatch", "password-file": pwf}}})
			if err := o.Write(context.Background(), []outputs.Record{eveLine(1, 1)}); err != nil {
				t.Fatal(err)
			}
			o.Close(context.Background())
			bad := outputs.Spec{Type: "kafka", Arg: addr + "/" + topic,
				Options: map[string]any{"max-attempts": 1, "sasl": map[string]any{"mechanism": mech, "username": "sewatch", "password": "wrong"}}}
			o2, err := outputs.Open(context.Background(), bad, quiet)
			if err != nil {
				t.Fatal(err) // authentication failures surface on write
			}
			defer o2.Close(context.Background())
			if err := o2.Write(context.Background(), []outputs.Record{eveLine(2, 1)}); err == nil {
				t.Error("wrong password accepted")
			}
		})
	}
}

// selfSigned writes a CA and a server certificate for 127.0.0.1 and returns
// the CA file and the server's tls.Config.
func selfSigned(t testing.TB) (caFile string, srv *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sewatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestTLS(t *testing.T) {
	caFile, srv := selfSigned(t)
	addr := cluster(t, kfake.TLS(srv))
	o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Options: map[string]any{"tls": map[string]any{"ca-file": caFile}}})
	if err := o.Write(context.Background(), []outputs.Record{eveLine(1, 1)}); err != nil {
		t.Fatal(err)
	}
	o.Close(context.Background())
	// Without the CA the broker is not trusted.
	o2 := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Options: map[string]any{"max-attempts": 1, "tls": map[string]any{}}})
	defer o2.Close(context.Background())
	if err := o2.Write(context.Background(), []outputs.Record{eveLine(2, 1)}); err == nil {
		t.Error("untrusted broker accepted")
	}
}

// BenchmarkRouterToKafka measures events/s through the router (batch 256,
// 5 ms batch timeout) and the Kafka output into kfake on loopback.
func BenchmarkRouterToKafka(b *testing.B) {
	for _, comp := range []string{"none", "snappy", "lz4"} {
		b.Run(comp, func(b *testing.B) {
			addr := cluster(b)
			o := open(b, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Options: map[string]any{"compression": comp}})
			rt := outputs.NewRouter(outputs.Policy{QueueSize: 4096, BatchSize: 256, BatchTimeout: 5 * time.Millisecond}, []outputs.Output{o}, quiet)
			recs := make([]outputs.Record, 1024)
			for i := range recs {
				recs[i] = eveLine(i, i%64)
			}
			b.SetBytes(int64(len(recs[0].JSON)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rt.Send(recs[i%len(recs)])
			}
			if err := rt.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if st := rt.Stats()[0]; st.Delivered != uint64(b.N) {
				b.Fatalf("%+v", st)
			}
		})
	}
}
