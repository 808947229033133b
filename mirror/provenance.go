package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ProvenanceHeader is the header key under which every mirrored record
// carries its provenance.
const ProvenanceHeader = "tributary.prov"

// Provenance says where a mirrored record comes from.
//
// Path lists the clusters the record has been in, in order: Path[0] is its
// origin (where it was first produced) and Path[len-1] the cluster it was
// mirrored from last (its immediate source), whose topic, partition and
// offset it was read at are Topic, Partition and Offset. A record is never
// mirrored into a cluster on its path, which is what stops active-active
// replication with identity names from looping.
//
// Encoding (version 1), kept small because it rides on every record:
//
//	version    byte (1)
//	path       uvarint count, then each cluster:
//	             0x01 + 16 bytes      a cluster ID that is a UUID
//	             0x00 + uvarint n + n bytes   any other ID or name
//	topic      uvarint n + n bytes
//	partition  uvarint
//	offset     uvarint
//
// A record mirrored once from a cluster with a UUID ID and topic "orders"
// carries 1+1+17+7+1+3 ≈ 30 bytes plus the 14-byte key.
type Provenance struct {
	Path      []string
	Topic     string
	Partition int32
	Offset    int64
}

// Origin is the cluster where the record was first produced.
func (p *Provenance) Origin() string { return p.Path[0] }

// Source is the cluster the record was mirrored from last.
func (p *Provenance) Source() string { return p.Path[len(p.Path)-1] }

// Crossed reports whether the record has been in cluster.
func (p *Provenance) Crossed(cluster string) bool {
	for _, c := range p.Path {
		if c == cluster {
			return true
		}
	}
	return false
}

const provenanceVersion = 1

// errBadProvenance is returned (wrapped) for a header that does not decode.
var errBadProvenance = errors.New("bad provenance header")

// AppendTo appends p's encoding to dst.
func (p *Provenance) AppendTo(dst []byte) []byte {
	dst = append(dst, provenanceVersion)
	dst = binary.AppendUvarint(dst, uint64(len(p.Path)))
	for _, c := range p.Path {
		if id, err := uuid.Parse(c); err == nil && id.String() == c {
			dst = append(dst, 1)
			dst = append(dst, id[:]...)
			continue
		}
		dst = append(dst, 0)
		dst = binary.AppendUvarint(dst, uint64(len(c)))
		dst = append(dst, c...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Topic)))
	dst = append(dst, p.Topic...)
	dst = binary.AppendUvarint(dst, uint64(p.Partition))
	dst = binary.AppendUvarint(dst, uint64(p.Offset))
	return dst
}

// DecodeProvenance decodes a provenance header value.
func DecodeProvenance(b []byte) (*Provenance, error) {
	bad := func(what string) (*Provenance, error) {
		return nil, fmt.Errorf("%w: %s", errBadProvenance, what)
	}
	if len(b) == 0 || b[0] != provenanceVersion {
		return bad("unknown version")
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	count, ok := uv()
	if !ok || count == 0 || count > 1024 {
		return bad("path")
	}
	p := &Provenance{Path: make([]string, 0, count)}
	for i := uint64(0); i < count; i++ {
		if len(b) == 0 {
			return bad("path")
		}
		kind := b[0]
		b = b[1:]
		switch kind {
		case 1:
			if len(b) < 16 {
				return bad("path")
			}
			p.Path = append(p.Path, uuid.UUID(b[:16]).String())
			b = b[16:]
		case 0:
			s, ok := str()
			if !ok {
				return bad("path")
			}
			p.Path = append(p.Path, s)
		default:
			return bad("path")
		}
	}
	if p.Topic, ok = str(); !ok {
		return bad("topic")
	}
	part, ok := uv()
	if !ok || part > 1<<31-1 {
		return bad("partition")
	}
	p.Partition = int32(part)
	off, ok := uv()
	if !ok || off > 1<<63-1 {
		return bad("offset")
	}
	p.Offset = int64(off)
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return p, nil
}

// ProvenanceOf returns the provenance header of a record, or nil if it has
// none (or it does not decode: such a record is treated as produced here).
func ProvenanceOf(headers []Header) *Provenance {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == ProvenanceHeader {
			p, err := DecodeProvenance(headers[i].Value)
			if err != nil {
				return nil
			}
			return p
		}
	}
	return nil
}
