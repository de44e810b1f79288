package main

import (
	"fmt"
	"log/slog"

	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/engine"
)

// reloadLists re-reads the allowlist (from the configuration file) and the
// VPN Gate list on SIGHUP. Either failing keeps both old lists and says why:
// a half-applied reload would be harder to reason about than none.
func reloadLists(cfgPath string, cfg config.Config, eng *engine.Engine, log *slog.Logger) {
	allow, gatePath := cfg.Allowlist, cfg.VPNGateList
	if cfgPath != "" {
		c, err := config.Load(cfgPath)
		if err != nil {
			log.Error("SIGHUP: configuration not reloaded; the old allowlist and VPN Gate list stay in force", "err", err)
			return
		}
		allow, gatePath = c.Allowlist, c.VPNGateList
	}
	gate, err := loadVPNGate(gatePath, log)
	if err != nil {
		log.Error("SIGHUP: VPN Gate list not reloaded; the old allowlist and VPN Gate list stay in force", "err", err)
		return
	}
	eng.Verdict().SetLists(allow, gate)
	log.Info("SIGHUP: lists reloaded", "allow_rules", len(allow), "vpngate_servers", len(gate), "vpngate_list", fmt.Sprint(gatePath))
}
