package udpping

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReplyHeapOrder pushes replies due in a shuffled order, with ties, and checks they pop
// by due time and, at the same time, in arrival order.
func TestReplyHeapOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	var h replyHeap
	type key struct {
		Due time.Duration
		Seq uint64
	}
	var want []key
	for seq := uint64(1); seq <= 500; seq++ {
		d := time.Duration(rng.IntN(50)) * time.Millisecond
		h.push(delayedReply{due: t0.Add(d), seq: seq})
		want = append(want, key{d, seq})
	}
	// The expected order: by due, then seq (a stable sort of arrival order by due).
	for i := 1; i < len(want); i++ {
		for j := i; j > 0 && want[j].Due < want[j-1].Due; j-- {
			want[j], want[j-1] = want[j-1], want[j]
		}
	}
	var got []key
	for len(h) > 0 {
		r := h.pop()
		got = append(got, key{r.due.Sub(t0), r.seq})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
}
