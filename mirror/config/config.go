package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tributary/tributary/mirror"
)

// File is a validated job file.
type File struct {
	// Path is the name the file was loaded or parsed under.
	Path string
	// Clusters maps each cluster's name in the file to its definition.
	Clusters map[string]Cluster
	// Jobs are the file's jobs, in file order, with unique names.
	Jobs []mirror.JobSpec
	// NATS maps the name of each job with a NATS source or target to its
	// NATS mapping (the job's nats: block, defaults where it is left out).
	NATS map[string]*NATSJob
}

// Job returns the job named name.
func (f *File) Job(name string) (mirror.JobSpec, bool) {
	for _, j := range f.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return mirror.JobSpec{}, false
}

// Cluster is how to reach a cluster: exactly one of Bootstrap, Consul and
// NATS is set.
type Cluster struct {
	// Name is the cluster's name in the file, used by jobs and by the
	// {cluster} placeholder of rename policies.
	Name string
	// Bootstrap holds the seed brokers as host:port.
	Bootstrap []string
	// Consul finds the brokers through Consul instead (the topology
	// package resolves it).
	Consul *ConsulRef
	// NATS makes the cluster a NATS system (core or JetStream) reached
	// through bridge/nats; the Kafka fields below are then unset.
	NATS *NATS
	// ClientID is the Kafka client ID to use; "" lets the bridge choose.
	ClientID string
	// Version pins the Kafka protocol version the client assumes, such as
	// "2.8.0"; "" lets the bridge choose.
	Version string
	// Security configures TLS and SASL; the zero value is plaintext
	// without authentication.
	Security Security
}

// ConsulRef names a Tributary cluster registered in Consul.
type ConsulRef struct {
	// Cluster is the cluster's name in Consul; it defaults to the name of
	// the cluster entry.
	Cluster string
	// Datacenter is the Consul datacenter; "" is the local agent's.
	Datacenter string
}

// Security is a cluster's transport security and authentication.
type Security struct {
	// TLS is nil for plaintext.
	TLS *TLS
	// SASL is nil for no authentication.
	SASL *SASL
}

// TLS configures a TLS connection. Empty fields take the system's roots and
// no client certificate.
type TLS struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	InsecureSkipVerify        bool
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is one of SASLPlain, SASLScramSHA256, SASLScramSHA512.
	Mechanism          string
	Username, Password string
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Options control parsing.
type Options struct {
	// LookupEnv resolves ${VAR} references. Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// NoEnv makes every ${...} reference an error, for job files that do
	// not come from the local filesystem (such as jobs held in Consul's KV
	// store). $$ still stands for $.
	NoEnv bool
}

// Load reads and parses the job file at path. Problems of the file are
// reported as in Parse; failing to read it is not an ErrInvalid.
func Load(path string, opts Options) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse expands, parses and validates a job file; name is used in error
// messages and as File.Path. On failure it returns every problem found
// (each an *Error matching ErrInvalid, combined with multierr) and no File.
func Parse(name string, data []byte, opts Options) (*File, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	x := expand(data, lookup, opts.NoEnv)
	d := &decoder{x: x, p: &problems{file: name}, misspelt: map[*yaml.Node]map[string]bool{},
		natsClusters: map[string]bool{}, natsJobs: map[string]*NATSJob{}}
	for _, pr := range x.problems {
		line, col := x.orig.position(pr.offset)
		d.p.add(line, col, "", "%s", pr.msg)
	}

	root, err := parseYAML(x.out)
	if err != nil {
		line, msg := yamlErrorLine(err)
		origLine, origCol := x.origPosition(line, 1)
		if line == 0 {
			origLine, origCol = 1, 1
		}
		d.p.add(origLine, origCol, "", "%s", msg)
		return nil, d.p.err()
	}
	f := &File{Path: name, Clusters: map[string]Cluster{}, NATS: map[string]*NATSJob{}}
	d.file(root, f)
	if err := d.p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseYAML parses the single YAML document of data; nil for an empty one.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("yaml: line %d: a job file holds one YAML document, found another", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlErrorLine splits a YAML syntax error into its line (0 if it has
// none) and message.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, "YAML syntax: " + msg[len(m[0]):]
	}
	return 0, "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")
}

// decoder walks the YAML tree of a job file, reporting problems at their
// original positions.
type decoder struct {
	x *expansion
	p *problems
	// misspelt holds, per mapping, the allowed keys suggested for unknown
	// ones, whose absence is then not reported again.
	misspelt map[*yaml.Node]map[string]bool
	// natsClusters holds the names of clusters defined with nats:, and
	// natsJobs the NATS mapping of each job with a NATS endpoint.
	natsClusters map[string]bool
	natsJobs     map[string]*NATSJob
}

// errorf reports a problem at n. A problem with a value on a line where a
// ${...} reference could not be resolved is a consequence of that one, and
// is not reported again.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	line, col := d.x.origPosition(n.Line, n.Column)
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.SequenceNode {
		for _, pr := range d.x.problems {
			if l, _ := d.x.orig.position(pr.offset); l == line {
				return
			}
		}
	}
	d.p.add(line, col, field, format, args...)
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a value"
	}
}

// mapping returns the values of a mapping node by key, reporting keys not
// in allowed (at the key) and repeated keys. ok is false if n is not a
// mapping.
func (d *decoder) mapping(n *yaml.Node, field string, allowed ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping of %s, found %s", strings.Join(allowed, ", "), kindName(n))
		return nil, false
	}
	values := make(map[string]*yaml.Node, len(n.Content)/2)
	keyAt := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		name := k.Value
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, field, "expected a key, found %s", kindName(k))
			continue
		}
		if first, dup := keyAt[name]; dup {
			d.errorf(k, join(field, name), "repeated key (first at line %d)", d.origLine(first))
			continue
		}
		keyAt[name] = k
		if !contains(allowed, name) {
			msg := fmt.Sprintf("unknown key (allowed: %s)", strings.Join(allowed, ", "))
			if s := closest(name, allowed); s != "" {
				if d.misspelt[n] == nil {
					d.misspelt[n] = map[string]bool{}
				}
				d.misspelt[n][s] = true
				msg = fmt.Sprintf("unknown key; did you mean %q? (allowed: %s)", s, strings.Join(allowed, ", "))
			}
			d.errorf(k, join(field, name), "%s", msg)
			continue
		}
		values[name] = v
	}
	return values, true
}

// namedEntries reads the clusters: section, a mapping whose keys are
// names; it returns key and value nodes in file order, without repeats.
func (d *decoder) namedEntries(n *yaml.Node, field string) (keys, values []*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping of names to definitions, found %s", kindName(n))
		return nil, nil
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, join(field, k.Value), "repeated key (first at line %d)", d.origLine(first))
			continue
		}
		seen[k.Value] = k
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values
}

func (d *decoder) origLine(n *yaml.Node) int {
	line, _ := d.x.origPosition(n.Line, n.Column)
	return line
}

// str returns a scalar's value; ok is false (and a problem reported) for
// anything else.
func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, field, "expected a single value, found %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// strs returns the values of a list of scalars, and their nodes.
func (d *decoder) strs(n *yaml.Node, field, example string) ([]string, []*yaml.Node) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "expected a list, such as %s, found %s", example, kindName(n))
		return nil, nil
	}
	var vals []string
	var nodes []*yaml.Node
	for i, c := range n.Content {
		c = deref(c)
		v, ok := d.str(c, fmt.Sprintf("%s[%d]", field, i))
		if !ok {
			continue
		}
		vals, nodes = append(vals, v), append(nodes, c)
	}
	return vals, nodes
}

// boolean returns a true/false value.
func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return false, false
	}
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	d.errorf(n, field, "%q is not a boolean (allowed: true, false)", s)
	return false, false
}

// enum maps a scalar to one of allowed's values.
func enum[T any](d *decoder, n *yaml.Node, field string, allowed []string, values []T) (T, bool) {
	var zero T
	s, ok := d.str(n, field)
	if !ok {
		return zero, false
	}
	for i, a := range allowed {
		if s == a {
			return values[i], true
		}
	}
	d.errorf(n, field, "unknown value %q (allowed: %s)", s, strings.Join(allowed, ", "))
	return zero, false
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the allowed key nearest to a misspelt one, or "".
func closest(s string, allowed []string) string {
	best, bestDist := "", 3 // suggest only within two edits
	for _, a := range allowed {
		if dist := editDistance(s, a); dist < bestDist {
			best, bestDist = a, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
