// Command config-update is the scale-to-zero function serving Core's
// POST /ucloud/{provider}/iapps/{app}/update for every integrated application.
package main

import "github.com/ucloud-im/knative-im/shared/iapps"

func main() { iapps.Main("config-update", iapps.OpUpdate) }
