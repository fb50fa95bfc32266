package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// chromiumPath returns Debian's chromium (or another Chromium on PATH).
// It skips the test when there is none, and fails it in CI, whose .ci/run
// installs the chromium package.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.InCI() {
		t.Fatal("chromium is not installed (apt-get install chromium), and DMARCD_CI is set")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// runChromium runs headless Chromium with a fresh profile and the given
// arguments, and returns its standard output. Everything it could fetch
// by itself (updates, sync, QUIC, ...) is off: the only page it loads is
// the test's, on loopback.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestDashboardInChromium imports reports into a store as dmarcd import
// does and opens the dashboard in real headless Chromium: the DOM it
// builds must hold the chart and the numbers of the reports, and its
// screenshot must show the chart's bars. DMARCD_SCREENSHOT_DIR keeps a
// copy of the screenshot for people to see.
func TestDashboardInChromium(t *testing.T) {
	bin := chromiumPath(t)
	src := importedSource(t)
	s := newTestServer(t, func(o *Options) { o.Source, o.Resolver = src, nil })
	ln := listen(t)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	url := fmt.Sprintf("http://%s/?days=15", ln.Addr())
	if res, err := http.Get(url); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the dashboard does not answer: %v", err)
	}

	t.Run("the DOM holds the chart and the imported numbers", func(t *testing.T) {
		dom := string(runChromium(t, bin, "--dump-dom", url))
		for _, re := range []string{
			`<svg id="compliance-chart"[^>]*role="img"`,
			`<title id="chart-title">DMARC compliance of all domains, 14 Nov 2026 to 28 Nov 2026</title>`,
			`<g class="day" data-date="2026-11-27">`,
			`<rect class="bar compliant" data-value="1631"`,
			`<rect class="bar quarantined" data-value="50"`,
			`<rect class="bar rejected" data-value="30"`,
			`<polyline points="[0-9., ]+"`,
			`<dd id="total-messages">2,918</dd>`,
			`<dd id="total-compliant">2,831</dd>`,
			`<dd id="total-quarantined">50</dd>`,
			`<dd id="total-rejected">34</dd>`,
			`<span id="total-spf-fail">107</span>`,
			`<td>mail\.example\.com</td>`,
			`<th scope="row">Yahoo</th>`,
			`<code>198\.51\.100\.7</code>`,
		} {
			if !regexp.MustCompile(re).MatchString(dom) {
				t.Errorf("the DOM lacks %s", re)
			}
		}
		if n := strings.Count(dom, `<g class="day"`); n != 15 {
			t.Errorf("the chart has %d days, want 15", n)
		}
		if t.Failed() {
			t.Logf("DOM:\n%s", dom)
		}
	})

	t.Run("the screenshot shows the chart", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "dashboard.png")
		runChromium(t, bin, "--window-size=1280,2200", "--screenshot="+file, url)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if dir := os.Getenv("DMARCD_SCREENSHOT_DIR"); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), data, 0o644); err != nil {
				t.Error(err)
			}
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("the screenshot is no PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2200 {
			t.Errorf("the screenshot is %dx%d, want 1280x2200", b.Dx(), b.Dy())
		}
		// Count the pixels of each of the chart's colours: the bars of
		// 26 and 27 November are hundreds of pixels high.
		want := map[string]int{colorCompliant: 5000, colorQuarantined: 150, colorRejected: 150, colorLine: 100}
		counts := map[[3]uint8]int{}
		var pix []uint8 // opaque RGBA, as Chromium's screenshots are: no need for the slow At
		switch p := img.(type) {
		case *image.NRGBA:
			pix = p.Pix
		case *image.RGBA:
			pix = p.Pix
		}
		if pix != nil {
			for i := 0; i+3 < len(pix); i += 4 {
				counts[[3]uint8{pix[i], pix[i+1], pix[i+2]}]++
			}
		} else {
			b := img.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
					counts[[3]uint8{c.R, c.G, c.B}]++
				}
			}
		}
		got := map[string]int{}
		for c, n := range counts {
			got[fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])] += n
		}
		colours := counts
		for c, n := range want {
			if got[c] < n {
				t.Errorf("%d pixels of %s, want at least %d", got[c], c, n)
			}
		}
		if len(colours) < 50 {
			t.Errorf("the screenshot has %d colours: blank?", len(colours))
		}
		t.Logf("screenshot %s: %d bytes, %d colours, %d compliant-green pixels", file, len(data), len(colours), got[colorCompliant])
	})
}
