// Package scripts tests the shell scripts' shared parts on their own, in seconds.
package scripts
