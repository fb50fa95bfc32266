package loadtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPUTime is the user plus system CPU time a process (all its threads)
// has used, from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Memory is a process's resident set, from /proc/PID/status.
type Memory struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM, bytes
	Anon int64 // RssAnon: the heaps (Go's and any other), stacks
	File int64 // RssFile: the binary and libraries mapped
}

// MemoryOf reads VmRSS and VmHWM of pid.
func MemoryOf(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) >= 1 {
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			*dst = kb * 1024
		}
	}
	return m, nil
}

// LoadAvg is the first three fields of /proc/loadavg.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// MiB formats bytes in MiB.
func MiB(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// SystemCPU is the busy time of all CPUs together (user, nice, system,
// irq, softirq, steal), from /proc/stat.
func SystemCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %v", err)
		}
		busy += v
	}
	return time.Duration(busy) * clockTick, nil
}

// cpuMeter measures, over a stretch of time, the CPU time of a server
// process, of this process (the driver and the DNS server), and of
// everything else on the machine.
type cpuMeter struct {
	pid              int
	start            time.Time
	server, self, sy time.Duration
}

func startCPU(pid int) (*cpuMeter, error) {
	m := &cpuMeter{pid: pid, start: time.Now()}
	var err error
	if m.server, err = CPUTime(pid); err != nil {
		return nil, err
	}
	m.self, _ = CPUTime(os.Getpid())
	m.sy, _ = SystemCPU()
	return m, nil
}

// CPUSplit is what a cpuMeter measured.
type CPUSplit struct {
	Server time.Duration // the server process
	Driver time.Duration // this process: load driver and DNS server
	Other  time.Duration // everything else on the machine
	Wall   time.Duration
}

func (m *cpuMeter) stop() (CPUSplit, error) {
	server, err := CPUTime(m.pid)
	if err != nil {
		return CPUSplit{}, err
	}
	self, _ := CPUTime(os.Getpid())
	sy, _ := SystemCPU()
	s := CPUSplit{Server: server - m.server, Driver: self - m.self, Wall: time.Since(m.start)}
	s.Other = max(sy-m.sy-s.Server-s.Driver, 0)
	return s, nil
}

// OtherCores is the machine's other load in CPUs busy on average.
func (s CPUSplit) OtherCores() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return s.Other.Seconds() / s.Wall.Seconds()
}
