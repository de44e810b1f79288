//go:build !no_elasticsearch

package all

import _ "github.com/sewatch/sewatch/outputs/elasticsearch" // elasticsearch output
