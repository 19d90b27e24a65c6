package appdomain

// DomainEnv is the wildcard application domain (apps.example.org) the app hosts live under.
type DomainEnv struct {
	AppsDomain string `envconfig:"UCLOUD_APPS_DOMAIN" required:"true"`
}

// IngressEnv is how job-create exposes a job's web interface: the Knative ingress (KIngress class) that
// serves the application domain, and the namespace of the IM's own Knative Services (app-auth among
// them), whose cluster host the app hosts' KIngresses lead to.
type IngressEnv struct {
	IngressClass string `envconfig:"INGRESS_CLASS" default:"kourier.ingress.networking.knative.dev"`
	IMNamespace  string `envconfig:"UCLOUD_IM_NAMESPACE" default:"ucloud-im"`
}

// Settings are the ingress settings of provider's app hosts, whose per-rank Services live in the jobs
// namespace.
func (e IngressEnv) Settings(provider string, domain DomainEnv, jobsNamespace string) Settings {
	return Settings{Provider: provider, AppsDomain: domain.AppsDomain, Class: e.IngressClass, Namespace: jobsNamespace,
		AuthService: AuthServiceName, AuthHost: FnAppAuth + "." + e.IMNamespace + ".svc.cluster.local"}
}
