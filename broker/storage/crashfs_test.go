package storage

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// crashFS is an in-memory FS that simulates power loss. Each file keeps its
// durable content (as of its last Sync) apart from its volatile content;
// each directory keeps its durable entries (as of its last SyncDir) apart
// from its live ones. Crash drops every un-fsynced byte and directory change.
// Simplification: directories themselves (MkdirAll) and RemoveAll are
// durable at once.
type crashFS struct {
	mu      sync.Mutex
	gen     int   // bumped by Crash; older handles fail
	syncErr error // if set, File.Sync fails with it and makes nothing durable
	dirs    map[string]*crashDir
	inodes  map[*crashInode]struct{}
}

type crashDir struct {
	live, durable map[string]*crashInode
}

type crashInode struct {
	data, durable []byte
}

type crashFile struct {
	fsys *crashFS
	ino  *crashInode
	name string
	gen  int
	open bool
}

var _ FS = (*crashFS)(nil)

func newCrashFS() *crashFS {
	return &crashFS{dirs: map[string]*crashDir{}, inodes: map[*crashInode]struct{}{}}
}

func (c *crashFS) split(name string) (*crashDir, string, error) {
	name = filepath.Clean(name)
	d := c.dirs[filepath.Dir(name)]
	if d == nil {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(name), nil
}

func (c *crashFS) OpenFile(name string, flag int, _ fs.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.split(name)
	if err != nil {
		return nil, err
	}
	ino := d.live[base]
	switch {
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino == nil:
		ino = &crashInode{}
		d.live[base] = ino
		c.inodes[ino] = struct{}{}
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = ino.data[:0]
	}
	return &crashFile{fsys: c, ino: ino, name: name, gen: c.gen, open: true}, nil
}

func (c *crashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.split(name)
	if err != nil {
		return err
	}
	if d.live[base] == nil {
		if _, isDir := c.dirs[filepath.Clean(name)]; isDir {
			delete(c.dirs, filepath.Clean(name))
			return nil
		}
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.live, base)
	return nil
}

func (c *crashFS) RemoveAll(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path = filepath.Clean(path)
	for p := range c.dirs {
		if p == path || strings.HasPrefix(p, path+"/") {
			delete(c.dirs, p)
		}
	}
	if d, base, err := c.split(path); err == nil {
		delete(d.live, base)
		delete(d.durable, base)
	}
	return nil
}

func (c *crashFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	od, ob, err := c.split(oldpath)
	if err != nil {
		return err
	}
	nd, nb, err := c.split(newpath)
	if err != nil {
		return err
	}
	ino := od.live[ob]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(od.live, ob)
	nd.live[nb] = ino
	return nil
}

func (c *crashFS) MkdirAll(path string, _ fs.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if c.dirs[p] == nil {
			c.dirs[p] = &crashDir{live: map[string]*crashInode{}, durable: map[string]*crashInode{}}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (c *crashFS) ReadDir(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[filepath.Clean(dir)]
	if d == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range d.live {
		names = append(names, n)
	}
	for p := range c.dirs {
		if p != filepath.Clean(dir) && filepath.Dir(p) == filepath.Clean(dir) {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (c *crashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[filepath.Clean(dir)]
	if d == nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	d.durable = maps.Clone(d.live)
	return nil
}

// Crash simulates power loss: every file loses what was not fsynced, every
// directory the changes not SyncDir'd. Handles opened before fail.
func (c *crashFS) Crash() { c.crash(nil) }

// CrashTorn is Crash, except that each file keeps a random part of its
// un-fsynced appended bytes (partial write-back by the kernel).
func (c *crashFS) CrashTorn(rng *rand.Rand) { c.crash(rng) }

func (c *crashFS) crash(rng *rand.Rand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, d := range c.dirs {
		d.live = maps.Clone(d.durable)
	}
	for ino := range c.inodes {
		keep := ino.durable
		if rng != nil && len(ino.data) > len(ino.durable) && bytes.HasPrefix(ino.data, ino.durable) {
			keep = ino.data[:len(ino.durable)+rng.IntN(len(ino.data)-len(ino.durable)+1)]
		}
		ino.data = bytes.Clone(keep)
		ino.durable = bytes.Clone(keep)
	}
}

// fileData returns the live content of name (test helper).
func (c *crashFS) fileData(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.split(name)
	if err != nil || d.live[base] == nil {
		return nil, false
	}
	return bytes.Clone(d.live[base].data), true
}

// setFileData replaces the content of name, durably (test helper).
func (c *crashFS) setFileData(name string, data []byte) error {
	if err := c.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, _ := c.split(name)
	ino := d.live[base]
	if ino == nil {
		ino = &crashInode{}
		c.inodes[ino] = struct{}{}
		d.live[base] = ino
	}
	d.durable[base] = ino
	ino.data, ino.durable = bytes.Clone(data), bytes.Clone(data)
	return nil
}

func (f *crashFile) check() error {
	if !f.open {
		return fmt.Errorf("%s: %w", f.name, os.ErrClosed)
	}
	if f.gen != f.fsys.gen {
		return fmt.Errorf("%s: handle from before a crash", f.name)
	}
	return nil
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) Write(p []byte) (int, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	f.ino.data = append(f.ino.data, p...)
	return len(p), nil
}

func (f *crashFile) Sync() error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if f.fsys.syncErr != nil {
		return f.fsys.syncErr
	}
	f.ino.durable = bytes.Clone(f.ino.data)
	return nil
}

// FailSyncs makes every File.Sync fail with err (nil: succeed again), as
// when the disk reports an I/O error; the failed Syncs make nothing durable.
func (c *crashFS) FailSyncs(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncErr = err
}

func (f *crashFile) Truncate(size int64) error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *crashFile) Size() (int64, error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *crashFile) Close() error {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	if !f.open {
		return fmt.Errorf("%s: %w", f.name, os.ErrClosed)
	}
	f.open = false
	return nil
}
