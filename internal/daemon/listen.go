package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// SocketPerms are the owner, group and mode given to a unix socket so that
// the MTA's user (postfix) can connect and nobody else can.
type SocketPerms struct {
	Owner string // user name or uid; "" keeps ours
	Group string // group name or gid; "" keeps ours
	Mode  fs.FileMode
}

// Listen opens network ("tcp", "tcp4", "tcp6" or "unix") at address. For a
// unix socket it removes a stale socket file left by a previous run (but
// never a live one, nor a file that is not a socket), creates the parent
// directory, and applies perms.
func Listen(network, address string, perms SocketPerms) (net.Listener, error) {
	if network != "unix" {
		return net.Listen(network, address)
	}
	if err := removeStale(address); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(address), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	// Create the socket with no permissions for others, so that it is
	// never reachable with the wrong mode, then open it up as configured.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", address)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := applyPerms(address, perms); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// removeStale deletes a socket file nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on it", path)
	}
	return os.Remove(path)
}

func applyPerms(path string, p SocketPerms) error {
	mode := p.Mode
	if mode == 0 {
		mode = 0o660
	}
	uid, gid := -1, -1
	if p.Owner != "" {
		u, err := lookupID(p.Owner, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return fmt.Errorf("socket owner %q: %w", p.Owner, err)
		}
		uid = u
	}
	if p.Group != "" {
		g, err := lookupID(p.Group, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return fmt.Errorf("socket group %q: %w", p.Group, err)
		}
		gid = g
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(path, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// lookupID accepts a number or a name resolved by lookup.
func lookupID(s string, lookup func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	id, err := lookup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}
