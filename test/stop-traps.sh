# Sourced by scripts that start servers (make run): stop_traps FN makes FN run once and to the end however
# the script ends (an error, Ctrl-C, SIGTERM, SIGHUP).
#
# Each signal's trap ignores every stop signal as its first command, before exit starts FN. A service manager
# sends SIGTERM to a whole process group and make then sends its child a second SIGTERM of its own; when the
# second arrived in the few commands between the first trap and FN ignoring signals, its pending trap ran
# "exit" inside the EXIT trap and ended the script part-way, leaving the cluster running (about 1 stop in 40).
stop_traps() {
  trap "$1" EXIT
  trap "trap '' INT TERM HUP PIPE; exit 130" INT
  trap "trap '' INT TERM HUP PIPE; exit 143" TERM
  trap "trap '' INT TERM HUP PIPE; exit 129" HUP
}
