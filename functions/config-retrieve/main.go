// Command config-retrieve is the scale-to-zero function serving Core's
// POST /ucloud/{provider}/iapps/{app}/retrieve for every integrated application.
package main

import "github.com/ucloud-im/knative-im/shared/iapps"

func main() { iapps.Main("config-retrieve", iapps.OpRetrieve) }
