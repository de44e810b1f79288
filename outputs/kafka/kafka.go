// Package kafkaout produces EVE events to a Kafka topic with
// segmentio/kafka-go.
//
// Each event is one message: the value is the EVE line byte for byte, the key
// is the event's community_id (else its flow_id), so all events of a flow
// land in one partition, in order. The partitioner is murmur2 by default,
// the hash of the Java client's default partitioner, so a topic that other
// producers key by community_id is co-partitioned with sewatch's; crc32
// (librdkafka's default) and fnv-1a (kafka-go's) are options. Headers carry
// the event type, the signature id (alerts), the sensor name (when
// sensor-name is set, the same value as EVE's host) and the stable event id
// (for consumer-side de-duplication: delivery is at-least-once).
//
// The message timestamp is the produce time, so the broker's time-based
// retention counts from when the alert was sent, not from when the packet
// was captured (an old pcap replayed today would otherwise be deleted at
// once); the event time stays in the EVE line's timestamp.
//
// Defaults chosen against the library's: RequiredAcks all (the library
// defaults to none, fire-and-forget), a 1 ms batch timeout (the library waits
// 1 s for a partial batch), snappy compression (EVE JSON shrinks to about a
// quarter; snappy is the codec every broker and client decodes, at the
// lowest CPU cost), few in-library attempts (the router's retry and
// spool take over when the broker is down), and no topic auto-creation: a
// missing topic is a clear error at start-up.
package kafkaout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/sewatch/sewatch/outputs"
)

func init() { outputs.Register("kafka", opener{}) }

// Options are the Kafka output's settings in the config file. The command
// line form `-o kafka:HOST:PORT[,HOST:PORT...]/TOPIC` sets Brokers and Topic.
type Options struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	// RequiredAcks: all (default), one or none.
	RequiredAcks string `yaml:"required-acks"`
	// Compression: snappy (default), none, gzip, lz4 or zstd.
	Compression string `yaml:"compression"`
	// Partitioner picks a message's partition from its key: murmur2
	// (default: the Java client's hash), crc32 (librdkafka's default
	// consistent_random) or fnv1a (kafka-go's Hash).
	Partitioner string `yaml:"partitioner"`
	// BatchSize is the most messages per produce request per partition (default 1000).
	BatchSize int `yaml:"batch-size"`
	// BatchBytes bounds a produce request (default 1 MiB).
	BatchBytes int64 `yaml:"batch-bytes"`
	// BatchTimeout is how long a partial batch waits (default 1ms: the router
	// has batched already, so waiting longer only adds latency).
	BatchTimeout time.Duration `yaml:"batch-timeout"`
	// WriteTimeout bounds one produce round trip (default 10s).
	WriteTimeout time.Duration `yaml:"write-timeout"`
	// MaxAttempts is how often the library tries a batch before the
	// router's retry and spool take over (default 3).
	MaxAttempts int `yaml:"max-attempts"`
	// AllowAutoTopicCreation lets the broker create a missing topic (off by default).
	AllowAutoTopicCreation bool `yaml:"allow-auto-topic-creation"`
	// SensorName goes into the sensor_name header (default: the host name).
	SensorName string `yaml:"sensor-name"`
	ClientID   string `yaml:"client-id"`
	TLS        *TLS   `yaml:"tls"`
	SASL       *SASL  `yaml:"sasl"`
}

// TLS configures an encrypted connection to the brokers.
type TLS struct {
	// CAFile verifies the brokers (default: the system roots).
	CAFile string `yaml:"ca-file"`
	// CertFile and KeyFile are an optional client certificate.
	CertFile   string `yaml:"cert-file"`
	KeyFile    string `yaml:"key-file"`
	ServerName string `yaml:"server-name"`
	// InsecureSkipVerify disables verification (testing only).
	InsecureSkipVerify bool `yaml:"insecure-skip-verify"`
}

// SASL configures authentication.
type SASL struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PasswordFile holds the password (first line), instead of Password.
	PasswordFile string `yaml:"password-file"`
}

// Header names set on every message.
const (
	HeaderEventType   = "event_type"
	HeaderSignatureID = "signature_id"
	HeaderSensorName  = "sensor_name"
	HeaderEventID     = "event_id"
)

type opener struct{}

// ParseArg splits the `-o kafka:` argument HOST:PORT[,HOST:PORT...]/TOPIC.
func ParseArg(arg string) (brokers []string, topic string, err error) {
	i := strings.LastIndexByte(arg, '/')
	if i < 0 {
		return nil, "", fmt.Errorf("kafka output %q: want HOST:PORT[,HOST:PORT...]/TOPIC", arg)
	}
	for _, b := range strings.Split(arg[:i], ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers, arg[i+1:], nil
}

func options(s outputs.Spec) (Options, error) {
	var o Options
	if err := outputs.DecodeOptions(s, &o); err != nil {
		return o, err
	}
	if s.Arg != "" {
		b, t, err := ParseArg(s.Arg)
		if err != nil {
			return o, err
		}
		o.Brokers, o.Topic = b, t
	}
	if len(o.Brokers) == 0 {
		return o, errors.New("kafka output needs brokers (-o kafka:HOST:PORT/TOPIC or brokers: in the config)")
	}
	for _, b := range o.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return o, fmt.Errorf("kafka output: broker %q: want HOST:PORT", b)
		}
	}
	if o.Topic == "" {
		return o, errors.New("kafka output needs a topic")
	}
	if _, err := acks(o.RequiredAcks); err != nil {
		return o, err
	}
	if _, err := compression(o.Compression); err != nil {
		return o, err
	}
	if _, err := balancer(o.Partitioner); err != nil {
		return o, err
	}
	if o.BatchSize < 0 || o.BatchBytes < 0 || o.BatchTimeout < 0 || o.WriteTimeout < 0 || o.MaxAttempts < 0 {
		return o, errors.New("kafka output: batch and timeout settings must not be negative")
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 1 << 20
	}
	if o.BatchTimeout == 0 {
		o.BatchTimeout = time.Millisecond
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 3
	}
	if t := o.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return o, errors.New("kafka output: tls cert-file and key-file go together")
	}
	if a := o.SASL; a != nil {
		switch strings.ToUpper(a.Mechanism) {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return o, fmt.Errorf("kafka output: sasl mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", a.Mechanism)
		}
		if a.Username == "" || (a.Password == "") == (a.PasswordFile == "") {
			return o, errors.New("kafka output: sasl needs a username and one of password, password-file")
		}
	}
	return o, nil
}

func acks(s string) (kafka.RequiredAcks, error) {
	switch strings.ToLower(s) {
	case "", "all", "-1":
		return kafka.RequireAll, nil
	case "one", "1":
		return kafka.RequireOne, nil
	case "none", "0":
		return kafka.RequireNone, nil
	}
	return 0, fmt.Errorf("kafka output: required-acks %q (want all, one or none)", s)
}

func compression(s string) (kafka.Compression, error) {
	switch strings.ToLower(s) {
	case "none":
		return 0, nil
	case "", "snappy":
		return kafka.Snappy, nil
	case "gzip":
		return kafka.Gzip, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("kafka output: compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}

func (opener) Validate(s outputs.Spec) error { _, err := options(s); return err }

func (opener) Open(ctx context.Context, s outputs.Spec, log *slog.Logger) (outputs.Output, error) {
	o, err := options(s)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "kafka:" + o.Topic
	}
	return Open(ctx, o, name, log)
}

// Output produces to one topic.
type Output struct {
	opt    Options
	name   string
	log    *slog.Logger
	tr     *kafka.Transport
	w      *kafka.Writer
	sensor string

	partial atomic.Uint64
}

// build makes the writer without contacting the brokers.
func build(o Options, name string, log *slog.Logger) (*Output, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: o.ClientID, MetadataTTL: 10 * time.Second}
	if tr.ClientID == "" {
		tr.ClientID = "sewatch"
	}
	if o.TLS != nil {
		c, err := tlsConfig(o.TLS)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		tr.TLS = c
	}
	if o.SASL != nil {
		m, err := mechanism(o.SASL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		tr.SASL = m
	}
	ack, _ := acks(o.RequiredAcks)
	comp, _ := compression(o.Compression)
	bal, _ := balancer(o.Partitioner)
	// No host-name default: the header says what EVE's host says (both
	// come from sensor-name), so the two never disagree.
	sensor := o.SensorName
	w := &kafka.Writer{
		Addr:                   kafka.TCP(o.Brokers...),
		Topic:                  o.Topic,
		Balancer:               bal,
		MaxAttempts:            o.MaxAttempts,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		BatchSize:              o.BatchSize,
		BatchBytes:             o.BatchBytes,
		BatchTimeout:           o.BatchTimeout,
		ReadTimeout:            o.WriteTimeout,
		WriteTimeout:           o.WriteTimeout,
		RequiredAcks:           ack,
		Compression:            comp,
		AllowAutoTopicCreation: o.AllowAutoTopicCreation,
		Transport:              tr,
	}
	return &Output{opt: o, name: name, log: log, tr: tr, w: w, sensor: sensor}, nil
}

// Open builds the writer and checks, when the brokers answer, that the
// topic exists and the credentials are accepted. Unreachable brokers are
// not an error here: delivery retries (and spools, when a spool is set).
func Open(ctx context.Context, o Options, name string, log *slog.Logger) (*Output, error) {
	out, err := build(o, name, log)
	if err != nil {
		return nil, err
	}
	tr := out.tr
	log = out.log
	if err := out.checkTopic(ctx); err != nil {
		var unreachable *unreachableError
		if !errors.As(err, &unreachable) || isAuthError(err) {
			tr.CloseIdleConnections()
			return nil, err
		}
		log.Warn("kafka brokers unreachable at start-up, delivery will retry", "output", name, "err", err)
	}
	return out, nil
}

type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// checkTopic asks the brokers for the topic's metadata.
func (o *Output) checkTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(o.opt.Brokers...), Transport: o.tr, Timeout: 5 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{o.opt.Topic}})
	if err != nil {
		return &unreachableError{fmt.Errorf("%s: metadata from %s: %w", o.name, strings.Join(o.opt.Brokers, ","), err)}
	}
	for _, t := range md.Topics {
		if t.Name != o.opt.Topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			if o.opt.AllowAutoTopicCreation {
				return nil
			}
			return o.missingTopic(t.Error)
		}
		if t.Error != nil {
			return fmt.Errorf("%s: topic %q: %w", o.name, o.opt.Topic, t.Error)
		}
		return nil
	}
	if o.opt.AllowAutoTopicCreation {
		return nil
	}
	return o.missingTopic(kafka.UnknownTopicOrPartition)
}

func (o *Output) missingTopic(err error) error {
	return fmt.Errorf("%s: topic %q does not exist on %s (create it, or set allow-auto-topic-creation: true): %w",
		o.name, o.opt.Topic, strings.Join(o.opt.Brokers, ","), err)
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Message builds the Kafka message of one record.
func (o *Output) Message(r outputs.Record) kafka.Message {
	// Time left zero: kafka-go stamps the produce time (see the package doc).
	m := kafka.Message{Value: r.JSON}
	switch {
	case r.Key != "":
		m.Key = []byte(r.Key)
	case r.FlowID != 0:
		m.Key = strconv.AppendInt(nil, r.FlowID, 10)
	}
	m.Headers = make([]kafka.Header, 0, 4)
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderEventType, Value: []byte(r.Type)})
	if r.SignatureID != 0 {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderSignatureID, Value: strconv.AppendInt(nil, int64(r.SignatureID), 10)})
	}
	if o.sensor != "" {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderSensorName, Value: []byte(o.sensor)})
	}
	if r.ID != "" {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderEventID, Value: []byte(r.ID)})
	}
	return m
}

// Write implements outputs.Output: it returns once every message of the
// batch is acknowledged (per required-acks). Messages that failed alone are
// sent again (twice at most) before the batch is reported as failed.
func (o *Output) Write(ctx context.Context, batch []outputs.Record) error {
	msgs := make([]kafka.Message, len(batch))
	for i, r := range batch {
		msgs[i] = o.Message(r)
	}
	var err error
	for round := 0; round < 3; round++ {
		err = o.w.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		var werrs kafka.WriteErrors
		if !errors.As(err, &werrs) || ctx.Err() != nil {
			break
		}
		failed := msgs[:0:0]
		for i, e := range werrs {
			if e != nil {
				failed = append(failed, msgs[i])
				err = e
			}
		}
		if len(failed) == 0 {
			return nil
		}
		o.partial.Add(1)
		msgs = failed
	}
	if errors.Is(err, kafka.UnknownTopicOrPartition) && !o.opt.AllowAutoTopicCreation {
		return o.missingTopic(err)
	}
	return fmt.Errorf("%s: produce %d events to %q: %w", o.name, len(msgs), o.opt.Topic, err)
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	err := o.w.Close()
	o.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

func tlsConfig(t *TLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca-file %s: no PEM certificates", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func mechanism(a *SASL) (sasl.Mechanism, error) {
	pass := a.Password
	if a.PasswordFile != "" {
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sasl password-file: %w", err)
		}
		pass, _, _ = strings.Cut(string(b), "\n")
		pass = strings.TrimRight(pass, "\r")
	}
	switch strings.ToUpper(a.Mechanism) {
	case "PLAIN":
		return plain.Mechanism{Username: a.Username, Password: pass}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, a.Username, pass)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, a.Username, pass)
	}
	return nil, fmt.Errorf("sasl mechanism %q", a.Mechanism)
}
