package loader

import (
	"crypto/sha256"
	"encoding/hex"
)

// ObjectHash is the SHA-256 of the BPF object this build carries, so that
// `xvrrp --version` names exactly which kernel programs it loads.
func ObjectHash() string {
	sum := sha256.Sum256(_BpfBytes)
	return hex.EncodeToString(sum[:])
}
