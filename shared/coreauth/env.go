package coreauth

import "crypto/rsa"

// PublicKeyEnv is where Core's public key is, for the functions that verify Core's tokens: a file, or the
// PEM text itself when no file is given.
type PublicKeyEnv struct {
	CorePublicKeyFile string `envconfig:"UCLOUD_CORE_PUBLIC_KEY_FILE"`
	CorePublicKey     string `envconfig:"UCLOUD_CORE_PUBLIC_KEY"`
}

// LoadCorePublicKey reads the key from the file or the inline PEM.
func (e PublicKeyEnv) LoadCorePublicKey() (*rsa.PublicKey, error) {
	return LoadPublicKey(e.CorePublicKeyFile, e.CorePublicKey)
}
