package appdomain

// DomainEnv is the wildcard application domain (apps.example.org) the app hosts live under.
type DomainEnv struct {
	AppsDomain string `envconfig:"UCLOUD_APPS_DOMAIN" required:"true"`
}
