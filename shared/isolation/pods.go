package isolation

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Capabilities are what a job's container keeps after dropping all: the container runtimes' default set
// (what research images are built and tested with: package installs, chown of data directories, su/gosu to
// an unprivileged user, servers on ports below 1024, chroot-based tools), which is also the most Pod
// Security's baseline level allows, less NET_RAW (raw sockets: spoofed packets and ARP/ICMP tricks
// against the rest of the node's network; ping works without it where the runtime enables unprivileged
// ICMP sockets, as containerd 2 does by default).
// Nothing more (SYS_ADMIN, SYS_PTRACE, NET_ADMIN...) is ever added: each is a way out of the container.
var Capabilities = []corev1.Capability{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
	"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// Harden gives every container of pod a security context that cannot escalate (no setuid gains:
// no_new_privs), keeps only Capabilities, and runs under the runtime's default seccomp profile. Images that
// expect root still run as root (research images mostly do); what that root can do is bounded here and by
// the namespace's Pod Security baseline, which refuses privileged pods, host namespaces and host paths.
func Harden(pod *corev1.Pod) {
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	pod.Spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			cs[i].SecurityContext = &corev1.SecurityContext{
				Privileged:               ptr.To(false),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: append([]corev1.Capability(nil), Capabilities...)},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}
		}
	}
}
