package daemon

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dmarcd/dmarcd/internal/config"
)

// userIDs returns the uid and gid of "name" or "name:group".
func userIDs(spec string) (uid, gid int, err error) {
	name, group, _ := cutUser(spec)
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", name, err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g, err = user.LookupGroupId(group); err != nil {
				return 0, 0, fmt.Errorf("group %q: %w", group, err)
			}
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

// giveStateDir hands the state directory, and the report database files
// in it, to cfg.User before root is given up, so that dmarcd can still
// write them. Under systemd (User= and StateDirectory=) there is nothing
// to do.
func giveStateDir(cfg *config.Config) error {
	if cfg.User == "" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := userIDs(cfg.User)
	if err != nil || uid == 0 {
		return err
	}
	for _, name := range []string{"", "spool", "dmarcd.db", "dmarcd.db-wal", "dmarcd.db-shm", "dmarcd.db.lease-sender"} {
		p := filepath.Join(cfg.StateDir, name)
		if err := os.Lchown(p, uid, gid); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}

// cutUser splits "name:group".
func cutUser(s string) (name, group string, ok bool) {
	return strings.Cut(s, ":")
}

// switchUser drops root for cfg.User ("name" or "name:group"), as
// OpenDMARC's UserID: the primary group or the one given, supplementary
// groups cleared. Running as that user already is fine; any other user
// cannot switch and says so. Go changes the ids of every thread.
func switchUser(cfg *config.Config) error {
	if cfg.User == "" {
		return nil
	}
	uid, gid, err := userIDs(cfg.User)
	if err != nil {
		return err
	}
	switch {
	case os.Geteuid() == uid && os.Getegid() == gid:
		return nil
	case os.Geteuid() != 0:
		return fmt.Errorf("user %q: running as uid %d, not root: cannot switch", cfg.User, os.Geteuid())
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}
