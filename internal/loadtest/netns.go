package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NamespaceEnv is set, to the namespace's name, in the run of this program
// that RunInNamespace starts inside the namespace.
const NamespaceEnv = "MILTERLOAD_NETNS"

const nsPrefix = "dmarcd-bench-"

// CanUseNamespace says why a network namespace cannot be made here, or "".
func CanUseNamespace() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "no ip command (iproute2)"
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns does not work here: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// RunInNamespace runs argv (this program again, typically) inside a new
// network namespace with only its loopback up and /etc/resolv.conf naming
// 127.0.0.1, as internal/difftest does: OpenDMARC resolves through
// libresolv, which always asks port 53 of the servers in resolv.conf, so
// the benchmark's DNS server must be on 127.0.0.1:53, which it may only be
// in a namespace of its own. No packet leaves the machine. The namespace
// and its /etc/netns directory are removed afterwards, as are those of
// earlier runs that were killed.
func RunInNamespace(argv []string) error {
	removeStaleNamespaces()
	ns := nsPrefix + strconv.Itoa(os.Getpid())
	etc := filepath.Join("/etc/netns", ns)
	_, err := os.Stat("/etc/netns")
	madeEtcNetns := errors.Is(err, fs.ErrNotExist)
	defer func() {
		removeNamespace(ns)
		if madeEtcNetns {
			_ = os.Remove("/etc/netns") // only if empty
		}
	}()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("loopback up in %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	resolv := "# written by dmarcd's internal/loadtest\nnameserver 127.0.0.1\noptions timeout:2 attempts:1\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = append(os.Environ(), NamespaceEnv+"="+ns)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}

func removeNamespace(ns string) {
	_ = exec.Command("ip", "netns", "delete", ns).Run()
	_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
}

// removeStaleNamespaces deletes the namespaces of runs that were killed:
// those whose pid is no longer a process.
func removeStaleNamespaces() {
	names := map[string]bool{}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				names[f[0]] = true
			}
		}
	}
	if entries, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range entries {
			names[e.Name()] = true
		}
	}
	for name := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, nsPrefix))
		if !strings.HasPrefix(name, nsPrefix) || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		removeNamespace(name)
	}
}
