package kafkaout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// balancer maps the partitioner option to kafka-go's balancers. Every event
// sewatch produces has a key (community_id or flow_id), so the random
// fallback for keyless messages of murmur2 and crc32 is never taken.
func balancer(s string) (kafka.Balancer, error) {
	switch strings.ToLower(s) {
	case "", "murmur2":
		return kafka.Murmur2Balancer{}, nil
	case "crc32":
		return kafka.CRC32Balancer{}, nil
	case "fnv1a", "fnv-1a", "hash":
		return &kafka.Hash{}, nil
	}
	return nil, fmt.Errorf("kafka output: partitioner %q (want murmur2, crc32 or fnv1a)", s)
}

// isAuthError: the brokers answered and refused the credentials or the
// access. Retrying cannot help, so Open reports it at once instead of
// leaving events to wait for a broker that will never accept them.
func isAuthError(err error) bool {
	for _, e := range []error{kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism,
		kafka.IllegalSASLState, kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
