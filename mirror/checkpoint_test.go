package mirror

import (
	"errors"
	"testing"
	"time"
)

func TestCheckpointEncodingRoundTrip(t *testing.T) {
	cp := &Checkpoint{Flow: "job/central", Time: time.Date(2026, 11, 21, 23, 51, 2, 123456789, time.UTC),
		Positions: map[SourcePartition]int64{
			{Cluster: "west", Topic: "orders", Partition: 3}: 7,
			{Cluster: "east", Topic: "orders", Partition: 0}: 42,
		}}
	b, err := EncodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"v":1,"flow":"job/central","time":"2026-11-21T23:51:02.123456789Z","positions":[` +
		`{"cluster":"east","topic":"orders","partition":0,"offset":42},{"cluster":"west","topic":"orders","partition":3,"offset":7}]}`
	if string(b) != want {
		t.Fatalf("encoded %s\nwant    %s", b, want)
	}
	got, err := DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Flow != cp.Flow || !got.Time.Equal(cp.Time) || len(got.Positions) != 2 ||
		got.Positions[SourcePartition{Cluster: "east", Topic: "orders"}] != 42 {
		t.Fatalf("decoded %+v, want %+v", got, cp)
	}
}

func TestCheckpointEncodingUsesUTC(t *testing.T) {
	east := time.FixedZone("east", 5*3600)
	cp := &Checkpoint{Flow: "f", Time: time.Date(2026, 1, 2, 8, 0, 0, 0, east)}
	b, err := EncodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"v":1,"flow":"f","time":"2026-01-02T03:00:00Z","positions":[]}`
	if string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
}

func TestDecodeCheckpointAcceptsNullPositions(t *testing.T) {
	// Earlier NATS sinks wrote a checkpoint without positions as null.
	cp, err := DecodeCheckpoint([]byte(`{"v":1,"flow":"f","time":"2026-01-02T03:00:00Z","positions":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Flow != "f" || cp.Positions == nil || len(cp.Positions) != 0 {
		t.Fatalf("decoded %+v", cp)
	}
}

func TestDecodeCheckpointRefusesOtherVersions(t *testing.T) {
	for _, in := range []string{`{"v":2,"flow":"x"}`, `{"flow":"x"}`} {
		if _, err := DecodeCheckpoint([]byte(in)); !errors.Is(err, ErrCheckpointVersion) {
			t.Errorf("DecodeCheckpoint(%s) = %v, want ErrCheckpointVersion", in, err)
		}
	}
	if _, err := DecodeCheckpoint([]byte(`{"v":`)); err == nil || errors.Is(err, ErrCheckpointVersion) {
		t.Errorf("DecodeCheckpoint of truncated JSON = %v, want a syntax error", err)
	}
}
