// Package netns makes the network namespaces that the differential test
// (internal/difftest) and the benchmark (internal/loadtest) run OpenDMARC
// in. OpenDMARC resolves through libresolv, which always asks port 53 of
// the servers in /etc/resolv.conf, so a test DNS server must be on
// 127.0.0.1:53, which it may only be in a namespace of its own: one with
// only its loopback up and an /etc/netns/<name>/resolv.conf naming
// 127.0.0.1, which `ip netns exec` mounts over /etc/resolv.conf. No packet
// leaves the machine.
//
// Namespaces are named <prefix><pid>. A run that was killed leaves its
// namespace behind; Create removes those of its prefix whose process is
// gone.
package netns

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

// Unavailable says why a network namespace cannot be made here, or "".
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Sprintf("no ip command (iproute2): %v", err)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns does not work here: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// Namespace is a network namespace made by Create.
type Namespace struct {
	// Name is the namespace's name, for `ip netns exec`.
	Name string
	// madeEtcNetns: /etc/netns did not exist before, and Remove removes
	// it when empty.
	madeEtcNetns bool
}

// Create makes the namespace <prefix><pid> with its loopback up and a
// resolv.conf naming 127.0.0.1 (one try, short: the only server is on that
// loopback, and a SERVFAIL it is told to give must reach the resolver as
// one, not after retries). by names the writer in the file's comment.
// First it removes the namespaces of prefix that killed runs left behind,
// and returns their names. On failure what was made is removed.
func Create(prefix, by string) (*Namespace, []string, error) {
	stale := removeStale(prefix)
	n := &Namespace{Name: prefix + strconv.Itoa(os.Getpid())}
	_, err := os.Stat("/etc/netns")
	n.madeEtcNetns = errors.Is(err, fs.ErrNotExist)
	if err := n.setUp(by); err != nil {
		_ = n.Remove()
		return nil, stale, err
	}
	return n, stale, nil
}

func (n *Namespace) setUp(by string) error {
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "-n", n.Name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("loopback up in %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	etc := filepath.Join("/etc/netns", n.Name)
	resolv := "# written by dmarcd's " + by + "\nnameserver 127.0.0.1\noptions timeout:2 attempts:1\n"
	var err error
	for try := 1; ; try++ {
		// Another run ending may remove /etc/netns between the two steps.
		err = os.MkdirAll(etc, 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644)
		}
		if err == nil || try == 3 || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
}

// Command returns the command that runs argv inside the namespace.
func (n *Namespace) Command(argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Remove deletes the namespace and its /etc/netns directory, and
// /etc/netns itself when Create made it and no other run uses it.
func (n *Namespace) Remove() error {
	err := remove(n.Name)
	if n.madeEtcNetns {
		_ = os.Remove("/etc/netns") // only if empty
	}
	return err
}

func remove(name string) error {
	var errs []error
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		errs = append(errs, fmt.Errorf("ip netns delete %s: %v: %s", name, err, bytes.TrimSpace(out)))
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", name)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeStale deletes the namespaces of prefix (and their /etc/netns
// directories) whose pid is no longer a process, and returns their names.
func removeStale(prefix string) []string {
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
	var removed []string
	for name := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if !strings.HasPrefix(name, prefix) || err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		if remove(name) == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
