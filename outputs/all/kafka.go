//go:build !no_kafka

package all

import _ "github.com/sewatch/sewatch/outputs/kafka" // kafka output
