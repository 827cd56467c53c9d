package route

import (
	"fmt"
	"slices"
	"sync"
)

// fakeKernel is an in-memory routing table. With a nil link list it
// invents an index for every device name; otherwise only the listed
// devices exist.
type fakeKernel struct {
	mu       sync.Mutex
	links    map[string]int
	names    map[int]string
	open     bool // any device name exists
	routes   map[fakeKey]kroute
	next     int // last index given to a device: the kernel does not reuse them
	lookups  int // linkIndex calls
	replaces int // successful replace calls
	dels     int // successful del calls
	rules    []krule
}

type fakeKey struct {
	table int
	k     routeKey
}

func newFakeKernel(links []string) *fakeKernel {
	f := &fakeKernel{links: map[string]int{}, names: map[int]string{}, routes: map[fakeKey]kroute{}, open: links == nil}
	for _, l := range links {
		f.addLink(l)
	}
	return f
}

func (f *fakeKernel) addLink(name string) int {
	f.next++
	idx := f.next
	f.links[name] = idx
	f.names[idx] = name
	return idx
}

func (f *fakeKernel) removeLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.links[name]
	delete(f.links, name)
	delete(f.names, idx)
	// Like the kernel: routes through a vanished device go away.
	for k, r := range f.routes {
		if slices.ContainsFunc(r.hops, func(h khop) bool { return h.link == idx }) {
			delete(f.routes, k)
		}
	}
}

func (f *fakeKernel) linkIndex(name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if idx, ok := f.links[name]; ok {
		return idx, nil
	}
	if f.open {
		return f.addLink(name), nil
	}
	return 0, errNoDevice
}

func (f *fakeKernel) linkName(index int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.names[index]; ok {
		return n
	}
	return fmt.Sprintf("if%d", index)
}

func (f *fakeKernel) list(table, proto int) ([]kroute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kroute
	for k, r := range f.routes {
		if k.table == table && (r.proto == proto || proto < 0) {
			out = append(out, cloneRoute(r))
		}
	}
	return out, nil
}

func (f *fakeKernel) replace(r kroute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range r.hops {
		if _, ok := f.names[h.link]; h.link != 0 && !ok {
			return fmt.Errorf("fake: link index %d: %w", h.link, errNoDevice)
		}
	}
	f.routes[fakeKey{r.table, r.key()}] = cloneRoute(r)
	f.replaces++
	return nil
}

func (f *fakeKernel) add(r kroute) error {
	f.mu.Lock()
	_, exists := f.routes[fakeKey{r.table, r.key()}]
	f.mu.Unlock()
	if exists {
		return fmt.Errorf("fake: route %v metric %d exists", r.dst, r.metric)
	}
	return f.replace(r)
}

func (f *fakeKernel) listRules(proto int) ([]krule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []krule
	for _, r := range f.rules {
		if r.proto == proto {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeKernel) addRule(r krule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return nil
}

func (f *fakeKernel) delRule(r krule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.rules, r)
	if i < 0 {
		return fmt.Errorf("fake: no rule %v", r)
	}
	f.rules = slices.Delete(f.rules, i, i+1)
	return nil
}

func (f *fakeKernel) del(r kroute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeKey{r.table, r.key()}
	cur, ok := f.routes[k]
	if !ok || cur.proto != r.proto {
		return fmt.Errorf("fake: no such route %v metric %d protocol %d", r.dst, r.metric, r.proto)
	}
	delete(f.routes, k)
	f.dels++
	return nil
}

func cloneRoute(r kroute) kroute {
	r.hops = slices.Clone(r.hops)
	return r
}
