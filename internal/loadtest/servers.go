package loadtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a milter under test, running as a process of its own so that
// its CPU time and memory are its own.
type Process struct {
	Name    string
	Targets map[string]Target // by transport: "unix", "tcp"
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// start runs argv with its output to logPath and waits until every target
// accepts connections.
func start(name string, argv []string, targets map[string]Target, logPath string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that a ^C to the benchmark reaches it only
	// through Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Targets: targets, LogPath: logPath, cmd: cmd, logFile: logFile, exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for _, t := range targets {
		for {
			c, err := net.DialTimeout(t.Network, t.Address, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				return nil, fmt.Errorf("%s exited at start (%v); its output:\n%s", name, p.waitErr, tail(logPath))
			default:
			}
			if time.Now().After(deadline) {
				p.Stop()
				return nil, fmt.Errorf("%s does not listen on %s after 15s: %v; its output:\n%s", name, t, err, tail(logPath))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p, nil
}

// Stop ends the process this benchmark started, by its pid: SIGTERM, and
// SIGKILL if it is still there after 5 s (libmilter takes 4 s to act on
// SIGTERM).
func (p *Process) Stop() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	p.logFile.Close()
}

// Kill ends the process at once (OpenDMARC has nothing to save).
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.logFile.Close()
}

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// warnings returns up to max lines of a dmarcd log at level WARN or
// ERROR, with how many more there were.
func warnings(path string, max int) []string {
	data, _ := os.ReadFile(path)
	var out []string
	more := 0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		if len(out) == max {
			more++
			continue
		}
		out = append(out, line)
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more warnings", more))
	}
	return out
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// StartNull runs the null milter: self (this program) with the "null"
// command, on a unix socket in dir and on tcpAddr; with replies, asking
// for a reply to every step (no protocol 6 no-reply options).
func StartNull(self, dir, tcpAddr string, replies bool) (*Process, error) {
	name := "null"
	argv := []string{self, "null"}
	if replies {
		name = "null-replies"
		argv = append(argv, "-replies")
	}
	sock := filepath.Join(dir, name+".sock")
	targets := map[string]Target{"unix": {"unix", sock}, "tcp": {"tcp", tcpAddr}}
	return start(name, append(argv, "-unix", sock, "-tcp", tcpAddr), targets, filepath.Join(dir, name+".log"))
}

// DmarcdConfig is the dmarcd.toml of the benchmark: both listeners, the
// corpus's trusted authserv-id, the benchmark's DNS server, SPF self-checks
// off (as OpenDMARC's SPFSelfValidate false: both read SPF from the
// trusted Authentication-Results), a cache large enough for the RSS
// measurement. Everything else is dmarcd's default: the log at info, one
// line per message; reports kept as the daemon keeps them.
func DmarcdConfig(dir, dnsAddr, tcpAddr string, cacheSize int) string {
	host, port, _ := net.SplitHostPort(tcpAddr)
	return fmt.Sprintf(`# written by dmarcd's internal/loadtest
authserv_id = %q
trusted_authserv_ids = [%q]
state_dir = %q

[[listener]]
address = "unix:%s"

[[listener]]
address = "inet:%s@%s"

[spf]
self_check = false

[dns]
nameservers = [%q]
cache_size = %d
`, AuthservID, TrustedID, filepath.Join(dir, "dmarcd-state"), filepath.Join(dir, "dmarcd.sock"), port, host, dnsAddr, cacheSize)
}

// StartDmarcd runs bin serve with DmarcdConfig written in dir. A
// debugAddr other than "" turns on its HTTP listener there, with
// http.pprof (the soak test reads /debug/vars and the heap profile).
func StartDmarcd(bin, dir, dnsAddr, tcpAddr string, cacheSize int, debugAddr string) (*Process, error) {
	conf := filepath.Join(dir, "dmarcd.toml")
	text := DmarcdConfig(dir, dnsAddr, tcpAddr, cacheSize)
	if debugAddr != "" {
		text += fmt.Sprintf("\n[http]\nlisten = %q\npprof = true\n", debugAddr)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	targets := map[string]Target{"unix": {"unix", filepath.Join(dir, "dmarcd.sock")}, "tcp": {"tcp", tcpAddr}}
	argv := []string{bin, "serve", "-c", conf}
	return start("dmarcd", argv, targets, filepath.Join(dir, "dmarcd.log"))
}

// OpenDMARCConfig is the opendmarc.conf matching DmarcdConfig: the same
// ids, rejecting and holding as dmarcd does by default, SPF from the
// trusted Authentication-Results, the corpus's public suffix list, no
// syslog (dmarcd's log goes to a file; OpenDMARC logs nothing per message
// without syslog). It resolves through /etc/resolv.conf, which the
// benchmark's network namespace points at its DNS server.
func OpenDMARCConfig(dir string, t Target) string {
	socket := "local:" + t.Address
	if t.Network == "tcp" {
		host, port, _ := net.SplitHostPort(t.Address)
		socket = "inet:" + port + "@" + host
	}
	return fmt.Sprintf(`# written by dmarcd's internal/loadtest
AuthservID              %s
TrustedAuthservIDs      %s
RejectFailures          true
HoldQuarantinedMessages true
SPFSelfValidate         false
PublicSuffixList        %s
Socket                  %s
Syslog                  false
`, AuthservID, TrustedID, filepath.Join(dir, "public_suffix_list.dat"), socket)
}

// StartOpenDMARC runs bin (Debian's opendmarc) in the foreground on one
// socket: OpenDMARC listens on one only.
func StartOpenDMARC(bin, dir string, t Target) (*Process, error) {
	if err := os.WriteFile(filepath.Join(dir, "public_suffix_list.dat"), []byte(SuffixList), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "opendmarc-"+t.Network+".conf")
	if err := os.WriteFile(conf, []byte(OpenDMARCConfig(dir, t)), 0o644); err != nil {
		return nil, err
	}
	if t.Network == "unix" {
		_ = os.Remove(t.Address)
	}
	argv := []string{bin, "-f", "-c", conf, "-P", filepath.Join(dir, "opendmarc-"+t.Network+".pid")}
	return start("opendmarc", argv, map[string]Target{t.Network: t}, filepath.Join(dir, "opendmarc-"+t.Network+".log"))
}

// errSkip marks a part of the benchmark that cannot run here.
var errSkip = errors.New("skipped")

// opendmarcVersion is the first line of opendmarc -V.
func opendmarcVersion(bin string) string {
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
