package main

import (
	"fmt"
	"path/filepath"

	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/outputs"
)

// settings lays the command line over the configuration file (or the
// built-in defaults) and validates the result. Every error is a usage error.
func settings(o options) (config.Config, error) {
	cfg := configDefaults()
	if o.cfgPath != "" {
		c, err := config.Load(o.cfgPath)
		if err != nil {
			return cfg, usage(err)
		}
		cfg = c
	}
	for _, f := range []struct{ flag, field *string }{{&o.logLevel, &cfg.LogLevel}, {&o.logFormat, &cfg.LogFormat},
		{&o.user, &cfg.User}, {&o.metricsListen, &cfg.MetricsListen}, {&o.filter, &cfg.Capture.Filter}} {
		if *f.flag != "" {
			*f.field = *f.flag
		}
	}
	if o.workersSet {
		cfg.Capture.Workers = o.workers
	}
	if o.ringBlocks != 0 {
		cfg.Capture.RingBlocks = o.ringBlocks
	}
	if o.ringBlockSize != 0 {
		cfg.Capture.RingBlockSize = o.ringBlockSize
	}
	if o.flowBuffers != "" {
		n, err := config.ParseByteSize(o.flowBuffers)
		if err != nil {
			return cfg, usage(fmt.Errorf("--flow-buffer-budget: %w", err))
		}
		cfg.Memory.FlowBuffers = n
	}
	outs, err := outputSpecs(o, cfg)
	if err != nil {
		return cfg, usage(err)
	}
	cfg.Outputs = outs
	if err := cfg.Validate(); err != nil {
		return cfg, usage(fmt.Errorf("invalid configuration: %w", err))
	}
	return cfg, nil
}

// outputSpecs decides the outputs: -o replaces the configured ones (keeping
// the settings of a configured output of the same type); with neither, EVE
// goes to -l DIR/eve.json or stdout.
func outputSpecs(o options, cfg config.Config) ([]outputs.Spec, error) {
	var specs []outputs.Spec
	for _, v := range o.outs {
		s, err := outputs.ParseFlag(v)
		if err != nil {
			return nil, fmt.Errorf("-o %s: %w", redactURL(v), err)
		}
		for _, c := range cfg.Outputs {
			if c.Type == s.Type && s.Options == nil {
				s.Options, s.Types = c.Options, c.Types // auth, TLS, batching; event types
			}
		}
		specs = append(specs, s)
	}
	switch {
	case len(specs) > 0:
	case len(cfg.Outputs) > 0:
		specs = cfg.Outputs
	case o.logDir != "":
		specs = []outputs.Spec{{Type: "file", Arg: filepath.Join(o.logDir, "eve.json")}}
	default:
		specs = []outputs.Spec{{Type: "stdout"}}
	}
	for i := range specs {
		s := &specs[i]
		s.Name = fmt.Sprintf("outputs[%d] (%s)", i, s.Type)
		if s.Type == "kafka" && cfg.SensorName != "" {
			if _, set := s.Options["sensor-name"]; !set {
				opts := map[string]any{"sensor-name": cfg.SensorName}
				for k, v := range s.Options {
					opts[k] = v
				}
				s.Options = opts
			}
		}
	}
	return specs, nil
}
