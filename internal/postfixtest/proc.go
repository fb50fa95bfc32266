package postfixtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file reads /proc: which sockets listen, which processes belong to
// an instance, whether the test binary that started an instance still runs.

// listeningInodes returns the inodes of the TCP sockets listening on
// ip:port, from /proc/net/tcp. Looking is not connecting: a connection to
// smtpd would open a milter session.
func listeningInodes(ip net.IP, port int) ([]string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// local_address is the IPv4 address as a native-endian 32-bit hex
	// number, then the port in hex.
	var a [4]byte
	copy(a[:], ip.To4())
	want := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), port)
	var inodes []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[1] != want || f[3] != "0A" { // 0A: TCP_LISTEN
			continue
		}
		inodes = append(inodes, f[9])
	}
	return inodes, sc.Err()
}

// ownsSocket reports whether process pid has one of the socket inodes
// open.
func ownsSocket(pid int, inodes []string) bool {
	fds := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fds)
	if err != nil {
		return false
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fds, e.Name()))
		if err != nil {
			continue
		}
		for _, ino := range inodes {
			if link == "socket:["+ino+"]" {
				return true
			}
		}
	}
	return false
}

// processesWithEnv returns the pids of live processes whose environment
// holds the entry kv ("NAME=value").
func processesWithEnv(kv string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(kv)
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		// A zombie's environ reads empty; kernel threads' are unreadable.
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for v := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.Equal(v, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func killPID(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// An instance's owner file records the test process that started it:
// "pid starttime pidns bootid". A later Start reaps instances whose owner
// is gone (killed by the go test timeout, say, which runs no cleanup), but
// only those of this machine boot and this pid namespace, where the owner
// would be visible if it still ran.

func (p *Postfix) writeOwner() error {
	id, err := processIdentity(os.Getpid())
	if err != nil {
		return err
	}
	return p.writeFile(ownerFile, id+" "+namespaceIdentity()+"\n")
}

// processIdentity is "pid starttime": a pid is reused, the pair is not.
func processIdentity(pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", err
	}
	// pid (comm) state ppid ... field 22 is starttime; comm may hold
	// spaces and parentheses, so count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("odd /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return "", fmt.Errorf("process %d is gone", pid)
	}
	return strconv.Itoa(pid) + " " + f[19], nil
}

// namespaceIdentity is "pidns bootid" of this process.
func namespaceIdentity() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		ns = "?"
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		boot = []byte("?")
	}
	return ns + " " + strings.TrimSpace(string(boot))
}

var reapOnce sync.Once

// reapOrphans stops and removes, once per process, the instances in
// os.TempDir() whose test binary is gone.
func reapOrphans() { reapOnce.Do(reapAll) }

// reapAll stops and removes the instances in os.TempDir() whose test
// binary is gone.
func reapAll() {
	{
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
		here := namespaceIdentity()
		for _, dir := range dirs {
			b, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue // not ours, or being created
			}
			f := strings.Fields(string(b))
			if len(f) != 4 || f[2]+" "+f[3] != here {
				continue
			}
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				continue
			}
			if id, err := processIdentity(pid); err == nil && id == f[0]+" "+f[1] {
				continue // its owner runs
			}
			reap(dir)
		}
	}
}

// reap kills an orphaned instance's processes and removes its directory.
func reap(dir string) {
	kv := "MAIL_CONFIG=" + filepath.Join(dir, etcDir)
	for range 3 {
		pids := processesWithEnv(kv)
		if len(pids) == 0 {
			os.RemoveAll(dir)
			return
		}
		for _, pid := range pids {
			killPID(pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
