package agent

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestStateGenerationPersistsAndIncrements(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755&^stateUmask() {
		t.Errorf("state dir: %v, %v", fi, err)
	}
	for want := uint64(1); want <= 3; want++ {
		g, err := s.NextGeneration()
		if err != nil || g != want {
			t.Fatalf("NextGeneration = %d, %v; want %d", g, err, want)
		}
	}
	// A restart continues where the last run stopped.
	s2, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := s2.NextGeneration(); err != nil || g != 4 {
		t.Errorf("after reopen NextGeneration = %d, %v; want 4", g, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "generation"))
	if string(b) != "4\n" {
		t.Errorf("generation file = %q, want \"4\\n\"", b)
	}
	// No temp files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		t.Errorf("state dir holds %v, want only generation", n)
	}
}

func stateUmask() os.FileMode {
	dir, _ := os.MkdirTemp("", "umask")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "d")
	os.Mkdir(p, 0o777)
	fi, _ := os.Stat(p)
	return 0o777 &^ fi.Mode().Perm()
}

func TestStateGenerationCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "generation"), []byte("twelve\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.NextGeneration()
	if err == nil || !strings.Contains(err.Error(), "generation") || !strings.Contains(err.Error(), "twelve") {
		t.Errorf("corrupt generation: err = %v, want one naming the file and content", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "generation"), []byte(" 41 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if g, err := s.NextGeneration(); err != nil || g != 42 {
		t.Errorf("NextGeneration after ' 41 ' = %d, %v; want 42", g, err)
	}
}

func TestStateInMemoryGenerationGrows(t *testing.T) {
	s, err := openState("")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.NextGeneration()
	b, _ := s.NextGeneration()
	if b <= a {
		t.Errorf("in-memory generations %d then %d, want increasing", a, b)
	}
	// A second store, as after a restart without a state dir, must still
	// supersede the first one's reports.
	s2, _ := openState("")
	if c, _ := s2.NextGeneration(); c <= b {
		t.Errorf("generation after restart %d, want > %d", c, b)
	}
	if err := s.SetDrain(true, "x"); err != nil {
		t.Fatal(err)
	}
	if on, reason := s.Drain(); !on || reason != "x" {
		t.Errorf("in-memory drain = %v %q", on, reason)
	}
}

func TestStateDrainSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if on, reason := s.Drain(); on || reason != "" {
		t.Errorf("fresh drain = %v %q", on, reason)
	}
	if err := s.SetDrain(true, "  disk\nreplacement  "); err != nil {
		t.Fatal(err)
	}
	if on, reason := s.Drain(); !on || reason != "disk replacement" {
		t.Errorf("Drain = %v %q, want true \"disk replacement\"", on, reason)
	}
	s2, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if on, reason := s2.Drain(); !on || reason != "disk replacement" {
		t.Errorf("after reopen Drain = %v %q", on, reason)
	}
	if err := s2.SetDrain(false, "ignored"); err != nil {
		t.Fatal(err)
	}
	if err := s2.SetDrain(false, ""); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	s3, _ := openState(dir)
	if on, reason := s3.Drain(); on || reason != "" {
		t.Errorf("after undrain and reopen Drain = %v %q", on, reason)
	}
}

func TestStateDrainFileWrittenByHand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "drain"), []byte("maintenance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if on, reason := s.Drain(); !on || reason != "maintenance" {
		t.Errorf("hand-made drain file: %v %q", on, reason)
	}
}

func TestStateDirNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; a file in the way fails for everyone.
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o644)
		if _, err := openState(filepath.Join(file, "state")); err == nil || !strings.Contains(err.Error(), "state dir") {
			t.Errorf("state dir under a file: err = %v", err)
		}
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := openState(dir)
	if err == nil || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), dir) {
		t.Errorf("read-only state dir: err = %v", err)
	}
}

func TestStateConcurrentUse(t *testing.T) {
	s, err := openState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	seen := make(chan uint64, 40)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				g, err := s.NextGeneration()
				if err != nil {
					t.Error(err)
					return
				}
				seen <- g
				s.SetDrain(i%2 == 0, "r")
				s.Drain()
			}
		}()
	}
	wg.Wait()
	close(seen)
	got := make(map[uint64]bool)
	for g := range seen {
		if got[g] {
			t.Errorf("generation %d handed out twice", g)
		}
		got[g] = true
	}
	if len(got) != 40 {
		t.Errorf("%d distinct generations, want 40", len(got))
	}
}
