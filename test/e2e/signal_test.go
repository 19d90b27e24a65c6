package e2e

import "os"

var interrupt = os.Interrupt
