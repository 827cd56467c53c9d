// Package validate checks deploy/kubernetes/cgw.yaml against the Kubernetes
// API types: every document decodes strictly (an unknown or misspelt field
// is an error, as `kubectl apply --validate=strict` would report), and the
// DaemonSet keeps the least-privilege settings README promises. It is a
// module of its own so the main module does not depend on k8s.io/api.
//
//	cd deploy/kubernetes/validate && go test ./...
package validate

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const manifest = "../cgw.yaml"

// documents splits a multi-document YAML file.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

type decoded struct {
	configMaps []*corev1.ConfigMap
	daemonSets []*appsv1.DaemonSet
}

func decode(t *testing.T, docs [][]byte) decoded {
	t.Helper()
	var out decoded
	for i, d := range docs {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(d, &meta); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ConfigMap":
			cm := &corev1.ConfigMap{}
			out.configMaps = append(out.configMaps, cm)
			obj = cm
		case "apps/v1 DaemonSet":
			ds := &appsv1.DaemonSet{}
			out.daemonSets = append(out.daemonSets, ds)
			obj = ds
		default:
			t.Fatalf("document %d: unexpected %s %s (add it to this test)", i+1, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(d, obj); err != nil {
			t.Errorf("document %d (%s): %v", i+1, meta.Kind, err)
		}
	}
	return out
}

func TestStrictDecodeRejectsTypos(t *testing.T) {
	// The decoder must reject what the API server would: if this passed,
	// the manifest test below would prove nothing.
	bad := []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostNetwrok: true\n")
	if err := yaml.UnmarshalStrict(bad, &appsv1.DaemonSet{}); err == nil || !strings.Contains(err.Error(), "hostNetwrok") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

func TestManifest(t *testing.T) {
	d := decode(t, documents(t, manifest))
	if len(d.daemonSets) != 1 || len(d.configMaps) != 1 {
		t.Fatalf("%d DaemonSets and %d ConfigMaps, want 1 each", len(d.daemonSets), len(d.configMaps))
	}
	ds, cm := d.daemonSets[0], d.configMaps[0]

	for _, m := range []map[string]string{ds.Labels, cm.Labels, ds.Spec.Template.Labels} {
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} {
			if m[k] == "" {
				t.Errorf("labels %v lack %s", m, k)
			}
		}
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template", k, v)
		}
	}

	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("hostNetwork must be true: IKE/ESP and the TUN devices belong to the node")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext must run as a non-root user: %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the container has no capabilities section")
	}
	if got := sc.Capabilities.Drop; !slices.Equal(got, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities.drop = %v, want [ALL]", got)
	}
	if got := sc.Capabilities.Add; !slices.Equal(got, []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}) {
		t.Errorf("capabilities.add = %v, want [NET_ADMIN NET_BIND_SERVICE]", got)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container must not be privileged")
	}
	if !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(c.Image) {
		t.Errorf("image %q is not pinned by digest", c.Image)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || (p.Exec == nil && p.HTTPGet == nil && p.TCPSocket == nil && p.GRPC == nil) {
			t.Errorf("no %s probe", name)
		}
	}
	for _, p := range c.Ports {
		if p.ContainerPort == 9810 {
			t.Error("the metrics port is published; it listens on 127.0.0.1 only")
		}
	}

	// The PSKs come from a Secret volume, the config from the ConfigMap.
	var secret bool
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "cgw-psk" {
			secret = true
		}
	}
	if !secret {
		t.Error("no volume from the Secret cgw-psk")
	}
	cfg := cm.Data["cgw.yaml"]
	var parsed struct {
		Metrics struct {
			Listen string `json:"listen"`
		} `json:"metrics"`
		Connections []struct {
			Tunnels []map[string]any `json:"tunnels"`
		} `json:"connections"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatalf("ConfigMap cgw.yaml: %v", err)
	}
	if l := parsed.Metrics.Listen; l != "" && !strings.HasPrefix(l, "127.0.0.1:") {
		t.Errorf("metrics.listen %q: bind 127.0.0.1 (host network: anything else is reachable from outside the node)", l)
	}
	for _, conn := range parsed.Connections {
		for _, tn := range conn.Tunnels {
			if _, ok := tn["psk"]; ok {
				t.Errorf("tunnel %v: psk inline in a ConfigMap; use psk_file from the Secret", tn["name"])
			}
		}
	}
	if out := os.Getenv("CGW_K8S_CONFIG_OUT"); out != "" {
		// pkg-check validates the embedded configuration with cgwctl.
		if err := os.WriteFile(out, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The docs create the Secret from files, never literals.
	b, _ := os.ReadFile(manifest)
	if bytes.Contains(b, []byte("--from-literal")) || !bytes.Contains(b, []byte("kubectl create secret generic cgw-psk --from-file=")) {
		t.Error("the header must show `kubectl create secret generic cgw-psk --from-file=...` and no --from-literal")
	}
}
