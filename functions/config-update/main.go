// Command config-update is the scale-to-zero function serving Core's
// POST /ucloud/{provider}/iapps/{app}/update for every integrated application, and
// POST /ucloud/{provider}/jobs/openTerminalInFolder (the integrated terminal, see shared/iapps/terminalopen.go).
package main

import "github.com/ucloud-im/knative-im/shared/iapps"

func main() { iapps.Main("config-update", iapps.OpUpdate) }
