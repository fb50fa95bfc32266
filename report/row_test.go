package report

import (
	"sync"
	"testing"
)

func TestMemorySinkKeepsTheLastRowsAndCountsTheRest(t *testing.T) {
	s := &MemorySink{Max: 3}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Add(Row{HeaderFrom: string(rune('a' + i))})
		}()
	}
	wg.Wait()
	if rows := s.Rows(); len(rows) != 3 {
		t.Errorf("kept %d rows, want 3", len(rows))
	}
	if total, dropped := s.Counts(); total != 10 || dropped != 7 {
		t.Errorf("counts = %d, %d; want 10 added and 7 dropped", total, dropped)
	}
}
