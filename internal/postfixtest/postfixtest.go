// Package postfixtest runs a real, private Postfix for end-to-end tests: the
// milter under test sits behind a Postfix smtpd exactly as in production,
// the test talks SMTP to that smtpd and reads what Postfix did with each
// message (the maildir it delivered to, the hold queue, its log).
//
//	ln, _ := net.Listen("tcp", "127.0.0.1:0") // the milter under test serves ln
//	p := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + ln.Addr().String()})
//	r := p.Send(t, postfixtest.Message{
//		From: "alice@example.com",
//		To:   []string{"bob@example.org"},
//		Data: []byte("From: alice@example.com\nSubject: hi\n\nhello\n"),
//	})
//	if !r.Accepted() {
//		t.Fatalf("send: %v\n%s", r, p.Log())
//	}
//	got := p.DeliveredQueueID(t, r.QueueID, 10*time.Second)
//	// got[0].Header[0] is the first header of the stored message
//
// Each instance is Postfix's own binaries with a configuration of its own
// (postfix -c DIR) in a fresh directory under os.TempDir(): its own
// config_directory, queue_directory, data_directory, log file and syslog_name,
// and an smtpd on a free port of 127.0.0.1, so that several instances can run
// at once in one test binary. Nothing can leave the machine: there is no
// smtp, lmtp or relay service, the default, relay and local transports are
// error:, and every recipient domain is a virtual mailbox domain delivered by
// virtual(8) into one maildir the test reads.
//
// Postfix must be installed and the test must run as root. Otherwise Start
// skips the test, unless the environment variable DMARCD_CI is set (to
// anything but "" or "0"): then it fails it, so that CI cannot pass by
// skipping.
//
// Delivery runs as the user "nobody" (or, if there is none, as the postfix
// user); no other system user is needed or created.
//
// Start the milter under test before Postfix: cleanups run last-in
// first-out, so Postfix then stops (and closes its milter connections)
// before the milter does.
//
// Instances are stopped by t.Cleanup, all their processes with them. An
// instance whose test binary died without cleaning up (killed by the go test
// timeout, say) is stopped and removed by the next Start in the same temp
// directory.
package postfixtest

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// DefaultHostname is the myhostname of every instance unless
// Options.ExtraMain sets another: it names the server in the SMTP greeting
// and in the Received: header Postfix adds.
const DefaultHostname = "mx.postfixtest.test"

// Options configure an instance. The zero value is a Postfix without a
// milter.
type Options struct {
	// Milter is the address Postfix connects to for each SMTP session,
	// written as for smtpd_milters: "inet:127.0.0.1:PORT" or
	// "unix:/path/to/socket". Empty: no milter.
	//
	// Postfix's smtpd runs as the user postfix and must be able to reach
	// the milter: a unix socket must lie in directories that user can
	// search (t.TempDir() cannot: it is 0700 root) and be writable by it
	// (a socket root creates is 0755; chmod it 0666 or chown it). Use
	// SocketDir for a directory that works.
	Milter string

	// MilterProtocol is milter_protocol, the milter protocol version Postfix
	// offers. 0 means 6.
	MilterProtocol int

	// MilterDefaultAction is milter_default_action, what Postfix does when
	// the milter is unreachable or misbehaves: "accept", "reject",
	// "tempfail" or "quarantine". Empty means "tempfail".
	MilterDefaultAction string

	// Verbose runs smtpd and cleanup with -v, so that the log shows the
	// milter negotiation and every milter event. Noisy; for debugging.
	Verbose bool

	// ExtraMain holds main.cf settings added to, or replacing, the
	// harness's own (see the Config method for the result). Values are
	// written as given, on one line.
	ExtraMain map[string]string

	// KeepDir keeps the instance's directory after the test, to inspect
	// its configuration, queue and log, and logs where it is. Setting the
	// environment variable DMARCD_POSTFIX_KEEP=1 does the same for every
	// instance.
	KeepDir bool

	// pickPort replaces freePort in tests.
	pickPort func() int
}

// Postfix is a running private Postfix instance. Its methods may be called
// from several goroutines, but those that take a testing.TB fail it with
// t.Fatal and so belong to the test's goroutine.
type Postfix struct {
	name     string // syslog_name: "postfixtest-PID-N", unique on the machine
	dir      string // the instance's root: etc, queue, data, mail, maillog
	port     int
	hostname string
	opts     Options
	bins     binaries
	main     []setting

	stopOnce sync.Once
}

// setting is one main.cf line.
type setting struct{ key, value string }

// binaries are the Postfix commands the harness runs.
type binaries struct {
	postfix, postqueue, postcat string
}

// The instance's directory layout, relative to Postfix.dir.
const (
	etcDir   = "etc"   // config_directory: main.cf, master.cf
	queueDir = "queue" // queue_directory, owned by root
	dataDir  = "data"  // data_directory, owned by postfix
	mailDir  = "mail"  // virtual_mailbox_base, owned by the delivery user
	logFile  = "maillog"
	// ownerFile records which process owns the instance, for the reaper.
	ownerFile = "owner"
	// dirPrefix begins the name of every instance directory in os.TempDir().
	dirPrefix = "dmarcd-postfixtest-"
)

// instances counts the instances this process started; with the pid it
// makes their syslog_name unique.
var instances atomic.Int64

// Start starts a private Postfix, waits until its smtpd listens and returns
// it; t.Cleanup stops it and removes its files. It fails the test if
// Postfix does not come up, and skips it (fails it in CI) when Postfix is
// not installed or the test does not run as root.
func Start(t testing.TB, opts Options) *Postfix {
	t.Helper()
	bins := requirements(t)
	reapOrphans()

	deliver, err := deliveryUser()
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}

	dir, err := os.MkdirTemp("", dirPrefix+"*")
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	if err := checkTraversable(dir); err != nil {
		os.Remove(dir)
		t.Fatalf("postfixtest: %v", err)
	}
	p := &Postfix{
		name:     fmt.Sprintf("postfixtest-%d-%d", os.Getpid(), instances.Add(1)),
		dir:      dir,
		hostname: DefaultHostname,
		opts:     opts,
		bins:     bins,
	}
	if h, ok := opts.ExtraMain["myhostname"]; ok {
		p.hostname = h
	}
	t.Cleanup(func() { p.stop(t) })

	if err := p.layout(pfUser, deliver); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	p.main, err = p.mainConfig(deliver)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	if err := p.writeFile(filepath.Join(etcDir, "main.cf"), p.Config()); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}

	// The port is picked free, but something else may take it before
	// master binds it: then master fails to start, and we try another.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		if opts.pickPort != nil {
			p.port = opts.pickPort()
		} else {
			p.port = freePort()
		}
		if err := p.writeFile(filepath.Join(etcDir, "master.cf"), p.masterConfig()); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
		err := p.start()
		if err == nil {
			break
		}
		inUse := strings.Contains(err.Error(), "in use") || strings.Contains(p.Log(), "in use")
		if !inUse || attempt == attempts {
			t.Fatalf("postfixtest: %v\nlog:\n%s", err, p.Log())
		}
		p.kill()
		_ = os.WriteFile(filepath.Join(p.dir, logFile), nil, 0o644)
	}
	return p
}

// requirements checks that Postfix can run here, skipping or failing the
// test when it cannot, and returns where its commands are.
func requirements(t testing.TB) binaries {
	t.Helper()
	var b binaries
	for _, c := range []struct {
		name string
		path *string
	}{
		{"postfix", &b.postfix},
		{"postqueue", &b.postqueue},
		{"postcat", &b.postcat},
	} {
		p, err := lookPath(c.name)
		if err != nil {
			unavailable(t, "Postfix is not installed (%s not found; apt-get install postfix)", c.name)
		}
		*c.path = p
	}
	if os.Geteuid() != 0 {
		unavailable(t, "a private Postfix needs root (master and its queue must be owned by root)")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		unavailable(t, "Postfix is not installed properly: no user postfix: %v", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		unavailable(t, "Postfix is not installed properly: no group postdrop: %v", err)
	}
	return b
}

// lookPath finds a Postfix command in $PATH or in /usr/sbin, where Debian
// puts them and which a non-login $PATH may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

// unavailable skips the test, or fails it when running in CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Unavailable(t, "postfixtest: "+format, args...)
}

// deliveryUser is the account virtual(8) delivers as: nobody, or postfix on
// a system without nobody.
func deliveryUser() (*user.User, error) {
	if u, err := user.Lookup("nobody"); err == nil {
		return u, nil
	}
	return user.Lookup("postfix")
}

// layout creates the instance's directories with the owners Postfix
// insists on. The queue directory must exist, owned by root, before
// postfix check; data_directory must belong to postfix or master cannot
// open its lock file.
func (p *Postfix) layout(pfUser, deliver *user.User) error {
	// MkdirTemp made dir 0700; postfix's daemons need to traverse it.
	if err := os.Chmod(p.dir, 0o755); err != nil {
		return err
	}
	if err := p.writeOwner(); err != nil {
		return err
	}
	for _, d := range []string{etcDir, queueDir} {
		if err := os.Mkdir(filepath.Join(p.dir, d), 0o755); err != nil {
			return err
		}
	}
	chownDir := func(name string, mode os.FileMode, u *user.User) error {
		path := filepath.Join(p.dir, name)
		if err := os.Mkdir(path, mode); err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return os.Chown(path, uid, gid)
	}
	if err := chownDir(dataDir, 0o700, pfUser); err != nil {
		return err
	}
	return chownDir(mailDir, 0o700, deliver)
}

// writeFile writes one of the instance's files, dated a minute ago: Postfix
// does not trust a configuration file modified in the current second (it
// may still be being written) and sleeps, 300ms at a time, until the
// file is older, which made every start take 2s more.
func (p *Postfix) writeFile(name, content string) error {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	past := time.Now().Add(-time.Minute)
	return os.Chtimes(path, past, past)
}

// mainConfig is main.cf: the harness's settings, then Options.
func (p *Postfix) mainConfig(deliver *user.User) ([]setting, error) {
	o := p.opts
	proto := o.MilterProtocol
	if proto == 0 {
		proto = 6
	}
	action := cmp.Or(o.MilterDefaultAction, "tempfail")
	path := func(name string) string { return filepath.Join(p.dir, name) }
	const nowhere = "error:5.7.1 postfixtest delivers nothing outside"
	s := []setting{
		{"compatibility_level", "3.6"},

		// A private instance: its own directories and log. maillog_file
		// must lie under one of maillog_file_prefixes (default /var), so
		// the prefix names the instance directory. syslog_name tells
		// instances apart in the log; process_name is not a setting (each
		// program takes it from argv[0]).
		{"queue_directory", path(queueDir)},
		{"data_directory", path(dataDir)},
		{"maillog_file", path(logFile)},
		{"maillog_file_prefixes", p.dir},
		{"syslog_name", p.name},

		{"myhostname", p.hostname},
		{"mydomain", "postfixtest.test"},
		{"myorigin", "$myhostname"},
		{"smtpd_banner", "$myhostname ESMTP $mail_name"},
		{"biff", "no"},
		{"append_dot_mydomain", "no"},
		{"alias_maps", ""},
		{"alias_database", ""},
		// Postmaster notices would be delivered into the test maildir.
		{"notify_classes", ""},

		// Nothing leaves: loopback only, no relay host, every transport
		// that could lead outside is error: (and master.cf has no smtp,
		// lmtp or relay service either).
		{"inet_interfaces", "loopback-only"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.1/32"},
		{"relayhost", ""},
		{"relay_domains", ""},
		{"default_transport", nowhere},
		{"relay_transport", nowhere},
		{"local_transport", "error:5.7.1 postfixtest has no local delivery"},
		{"mydestination", ""},

		// Every domain is a virtual mailbox domain (a static: table
		// matches any key), every recipient exists and goes to the one
		// maildir mail/Maildir/, delivered by virtual(8) as a plain
		// user: virtual refuses uids below virtual_minimum_uid, root
		// included, and there are no mail users to deliver to.
		{"virtual_mailbox_domains", "static:all"},
		{"virtual_mailbox_base", path(mailDir)},
		{"virtual_mailbox_maps", "static:Maildir/"},
		{"virtual_uid_maps", "static:" + deliver.Uid},
		{"virtual_gid_maps", "static:" + deliver.Gid},
		{"virtual_minimum_uid", minUID(deliver.Uid)},

		// The milter.
		{"smtpd_milters", o.Milter},
		{"non_smtpd_milters", ""},
		{"milter_protocol", strconv.Itoa(proto)},
		{"milter_default_action", action},
		{"milter_connect_timeout", "5s"},
		{"milter_command_timeout", "10s"},
		{"milter_content_timeout", "20s"},

		// Fast and deterministic for tests: no reverse DNS of the client
		// (it would query DNS for 127.0.0.2, which may hang in a sandbox;
		// the client name is "unknown"), no sleeping before error replies,
		// no input throttling, quick retries, room for many rejected
		// commands in one session.
		{"smtpd_peername_lookup", "no"},
		{"smtpd_error_sleep_time", "0"},
		{"smtpd_soft_error_limit", "100"},
		{"smtpd_hard_error_limit", "100"},
		{"smtpd_timeout", "60s"},
		{"in_flow_delay", "0"},
		{"queue_run_delay", "1s"},
		{"minimal_backoff_time", "1s"},
		{"maximal_backoff_time", "2s"},
	}
	keys := slices.Sorted(maps.Keys(o.ExtraMain))
	for _, k := range keys {
		v := o.ExtraMain[k]
		if k == "" || strings.ContainsAny(k, " \t\r\n=#") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("ExtraMain: bad setting %q = %q", k, v)
		}
		i := slices.IndexFunc(s, func(e setting) bool { return e.key == k })
		if i >= 0 {
			s[i].value = v
		} else {
			s = append(s, setting{k, v})
		}
	}
	return s, nil
}

// minUID is virtual_minimum_uid: Postfix's default 100, or lower if the
// delivery user's uid is below it.
func minUID(uid string) string {
	n, err := strconv.Atoi(uid)
	if err != nil || n >= 100 {
		return "100"
	}
	return strconv.Itoa(max(n, 1))
}

// masterConfig is master.cf: the services a receiving, locally delivering
// Postfix needs, none that could send mail out, none chrooted.
func (p *Postfix) masterConfig() string {
	v := ""
	if p.opts.Verbose {
		v = " -v"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# postfixtest %s: receive on 127.0.0.1:%d, deliver to %s, send nothing out\n",
		p.name, p.port, filepath.Join(p.dir, mailDir, "Maildir"))
	b.WriteString("# service type  private unpriv chroot wakeup maxproc command\n")
	fmt.Fprintf(&b, "127.0.0.1:%d inet n - n - - smtpd%s\n", p.port, v)
	fmt.Fprintf(&b, "cleanup unix n - n - 0 cleanup%s\n", v)
	b.WriteString(`pickup unix n - n 60 1 pickup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`)
	return b.String()
}

// Config returns the instance's main.cf.
func (p *Postfix) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# postfixtest %s\n", p.name)
	for _, s := range p.main {
		fmt.Fprintf(&b, "%s = %s\n", s.key, s.value)
	}
	return b.String()
}

// freePort returns a port of 127.0.0.1 nobody listens on. It is taken below
// the kernel's ephemeral range (32768 and up on Linux), where outgoing
// connections, including Postfix's own to the milter, would otherwise
// compete for it; ports handed out before are not handed out again.
func freePort() int {
	usedPortsMu.Lock()
	defer usedPortsMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if usedPorts[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		usedPorts[port] = true
		return port
	}
	// Fall back on the kernel's choice.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 25025
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	usedPortsMu sync.Mutex
	usedPorts   = map[int]bool{}
)

// start runs postfix start and waits for smtpd's listening socket.
func (p *Postfix) start() error {
	cmd := exec.Command(p.bins.postfix, "-c", p.etc(), "start")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("postfix -c %s start: %v\n%s", p.etc(), err, bytes.TrimSpace(out))
	}
	// master -w has waited for master's initialisation, which binds the
	// listening sockets, so this is quick; the socket is looked for rather
	// than connected to, since a connection would open a milter session.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := p.listening()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("smtpd is not listening on 127.0.0.1:%d after 10s: %v", p.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening reports whether this instance's master holds a socket
// listening on its smtpd port.
func (p *Postfix) listening() (bool, error) {
	pid, err := p.masterPID()
	if err != nil {
		return false, err
	}
	inodes, err := listeningInodes(net.IPv4(127, 0, 0, 1), p.port)
	if err != nil || len(inodes) == 0 {
		return false, err
	}
	return ownsSocket(pid, inodes), nil
}

// masterPID reads master's pid file.
func (p *Postfix) masterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, queueDir, "pid", "master.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (p *Postfix) etc() string { return filepath.Join(p.dir, etcDir) }

// Dir returns the instance's directory: etc/ (config_directory), queue/,
// data/, mail/Maildir/ and the log file maillog.
func (p *Postfix) Dir() string { return p.dir }

// ConfigDir returns the instance's config_directory, for running Postfix
// commands on it by hand: postqueue -c DIR -p, postconf -c DIR.
func (p *Postfix) ConfigDir() string { return p.etc() }

// SMTPAddr returns the address of the instance's smtpd, "127.0.0.1:PORT".
func (p *Postfix) SMTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// Hostname returns the instance's myhostname.
func (p *Postfix) Hostname() string { return p.hostname }

// Log returns Postfix's log so far, for failure messages. Postfix writes
// it asynchronously (through postlogd), so the last events may be missing
// for a few milliseconds.
func (p *Postfix) Log() string {
	b, err := os.ReadFile(filepath.Join(p.dir, logFile))
	if err != nil {
		return fmt.Sprintf("(no Postfix log: %v)", err)
	}
	return string(b)
}

// WaitLog waits until Postfix's log contains substr and reports whether it
// did within timeout.
func (p *Postfix) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.Log(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the instance now rather than at cleanup, and removes its
// files unless they are kept. It may be called more than once.
func (p *Postfix) Stop(t testing.TB) {
	t.Helper()
	p.stop(t)
}

func (p *Postfix) stop(t testing.TB) {
	t.Helper()
	p.stopOnce.Do(func() {
		// Let postlogd write what is in flight before the log is read.
		if t.Failed() {
			time.Sleep(100 * time.Millisecond)
		}
		left := p.shutdown()
		if len(left) > 0 {
			t.Errorf("postfixtest: %s: processes still running after stop: %v", p.name, left)
		}
		if t.Failed() {
			t.Logf("postfixtest: %s log:\n%s", p.name, tail(p.Log(), 200))
		}
		if p.opts.KeepDir || os.Getenv("DMARCD_POSTFIX_KEEP") == "1" {
			// Without an owner the reaper leaves it alone.
			os.Remove(filepath.Join(p.dir, ownerFile))
			t.Logf("postfixtest: %s kept in %s", p.name, p.dir)
			return
		}
		if len(left) == 0 {
			if err := os.RemoveAll(p.dir); err != nil {
				t.Errorf("postfixtest: %v", err)
			}
		}
	})
}

// shutdown stops Postfix gracefully, then by force, and returns the pids of
// processes of the instance that survived both.
func (p *Postfix) shutdown() []int {
	if len(p.processes()) == 0 {
		return nil
	}
	// postfix stop signals master and returns; master stops its children
	// and exits.
	_ = exec.Command(p.bins.postfix, "-c", p.etc(), "stop").Run()
	if p.waitGone(5 * time.Second) {
		return nil
	}
	p.kill()
	if p.waitGone(2 * time.Second) {
		return nil
	}
	return p.processes()
}

// kill kills every process of the instance, master first.
func (p *Postfix) kill() {
	if pid, err := p.masterPID(); err == nil && slices.Contains(p.processes(), pid) {
		killPID(pid)
	}
	for _, pid := range p.processes() {
		killPID(pid)
	}
	p.waitGone(2 * time.Second)
}

// processes returns the pids of the instance's processes: those whose
// environment has its MAIL_CONFIG, which postfix -c sets and master passes
// on to every daemon it starts.
func (p *Postfix) processes() []int {
	return processesWithEnv("MAIL_CONFIG=" + p.etc())
}

func (p *Postfix) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(p.processes()) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n+1 {
		return fmt.Sprintf("(%d lines before)\n", len(lines)-n-1) + strings.Join(lines[len(lines)-n-1:], "")
	}
	return s
}

// SocketDir returns a new directory for a milter's unix socket that
// Postfix's smtpd, running as the user postfix, can reach (t.TempDir()
// cannot: it is 0700 root); t.Cleanup removes it. The socket itself must
// also be writable by postfix: chmod it 0666 after listening, since root's
// umask makes it 0755. Otherwise smtpd logs "connect to Milter service
// unix:…: Permission denied" and applies milter_default_action.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dmarcd-pftsock-*")
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	return dir
}

// ListenUnix listens on a unix socket Postfix can connect to, in a
// directory of SocketDir, and returns the listener and its address for
// Options.Milter, "unix:/path". t.Cleanup closes the listener.
func ListenUnix(t testing.TB) (net.Listener, string) {
	t.Helper()
	path := filepath.Join(SocketDir(t), "milter.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	return ln, "unix:" + path
}

// checkTraversable returns an error if the user postfix could not reach
// dir: every directory above it must be searchable by others (a TMPDIR of
// mode 0700 is not).
func checkTraversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (mode %v) is not searchable by the user postfix; set TMPDIR to a directory that is, like /tmp", d, info.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
