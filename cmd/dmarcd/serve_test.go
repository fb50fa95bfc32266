package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary builds dmarcd once for the tests that run the real daemon.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "dmarcd-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dmarcd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// daemonProc is a running dmarcd with its log lines.
type daemonProc struct {
	cmd   *exec.Cmd
	lines chan string
}

func startDaemon(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	return startDaemonIn(t, "", args...)
}

// startDaemonIn is startDaemon with dir as the working directory ("" for
// the test's).
func startDaemonIn(t *testing.T, dir string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(build(t), append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return d
}

// waitFor reads log lines until one contains s.
func (d *daemonProc) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("daemon exited before logging %q", s)
			}
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("no log line with %q in 10s", s)
		}
	}
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "dmarcd.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAnInvalidConfigStopsStartUpWithLineAndKey(t *testing.T) {
	dir := t.TempDir()
	conf := writeConfig(t, dir, "spec = \"rfc9989\"\n\n[milter]\nmax_conection = 10\n")
	cmd := exec.Command(build(t), "serve", "-c", conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	want := conf + ":4: unknown key \"milter.max_conection\""
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", stderr.String(), want)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestTheDaemonServesReloadsAndStops(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "dmarcd.sock")
	state := filepath.Join(dir, "var")
	good := fmt.Sprintf("state_dir = %q\n\n[[listener]]\naddress = \"unix:%s\"\nsocket_mode = \"0660\"\n", state, sock)
	conf := writeConfig(t, dir, good)
	d := startDaemon(t, "-c", conf)
	d.waitFor(t, "msg=listening")

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state directory not created: %v", err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial the milter socket: %v", err)
	}
	c.Close()

	t.Run("SIGHUP reloads the configuration", func(t *testing.T) {
		writeConfig(t, dir, good+"\n[policy]\nreject = \"quarantine\"\n")
		d.cmd.Process.Signal(syscall.SIGHUP)
		d.waitFor(t, "configuration reloaded")
	})
	t.Run("SIGHUP with a broken file keeps the running configuration", func(t *testing.T) {
		writeConfig(t, dir, good+"\n[policy]\nreject = \"maybe\"\n")
		d.cmd.Process.Signal(syscall.SIGHUP)
		d.waitFor(t, "reload failed; keeping the running configuration")
		if c, err := net.Dial("unix", sock); err != nil {
			t.Errorf("still serving? %v", err)
		} else {
			c.Close()
		}
	})
	t.Run("SIGTERM stops cleanly and removes the socket", func(t *testing.T) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.waitFor(t, "msg=stopped")
		for range d.lines {
		}
		if err := d.cmd.Wait(); err != nil {
			t.Errorf("exit: %v", err)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	})
}

func TestMakeRunFlagsStartTheMilterOnLoopback(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// As make run starts it: a state directory relative to where it runs.
	d := startDaemonIn(t, dir, "-listen", fmt.Sprintf("inet:%d@127.0.0.1", port), "-state-dir", "./var")
	d.waitFor(t, "msg=listening")
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, "var")); err != nil {
		t.Errorf("state directory: %v", err)
	}
}
