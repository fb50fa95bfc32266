package loadtest

import (
	"fmt"
	"os"

	"github.com/dmarcd/dmarcd/internal/netns"
)

// NamespaceEnv is set, to the namespace's name, in the run of this program
// that RunInNamespace starts inside the namespace.
const NamespaceEnv = "MILTERLOAD_NETNS"

const nsPrefix = "dmarcd-bench-"

// CanUseNamespace says why a network namespace cannot be made here, or "".
func CanUseNamespace() string { return netns.Unavailable() }

// RunInNamespace runs argv (this program again, typically) inside a new
// network namespace with only its loopback up and /etc/resolv.conf naming
// 127.0.0.1, as internal/difftest does (see internal/netns): the
// benchmark's DNS server must be on 127.0.0.1:53 for OpenDMARC. The
// namespace is removed afterwards, as are those of earlier runs that were
// killed.
func RunInNamespace(argv []string) error {
	ns, _, err := netns.Create(nsPrefix, "internal/loadtest")
	if err != nil {
		return err
	}
	defer func() {
		if err := ns.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, "milterload:", err)
		}
	}()
	cmd := ns.Command(argv...)
	cmd.Env = append(os.Environ(), NamespaceEnv+"="+ns.Name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}
