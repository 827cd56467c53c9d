package awsxml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// The fuzz targets share one property: a parser never panics, and what it
// accepts either fails Generate with an error or becomes a configuration
// config.Parse accepts. Seeds: every sample and synthetic input under
// ../testdata, plus the committed corpus in testdata/fuzz/<target>.

// samplePSKs are keys of the seed documents that must never reach an error.
var samplePSKs = []string{"EXAMPLEpsk1_abcdefghij", "65NEA23hAjkwJke8Zc2rKTdRUCIqpU8d", "QMP5tKPP5qk95Y1Eee9c_82", "ykdzzxykolYvqpja90zWaevu5jsaFt9n"}

func addSeeds(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", p))
		for _, file := range files {
			if strings.HasSuffix(file, ".golden.yaml") || strings.HasSuffix(file, ".md") {
				continue
			}
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

func checkGenerate(t *testing.T, conns []Connection, err error) {
	t.Helper()
	if err == nil && len(conns) > 0 {
		var out []byte
		out, _, err = GenerateAll(conns, Options{Advertise: prefixes("10.1.0.0/16")})
		if err == nil {
			if _, _, perr := config.Parse(out, "fuzz.yaml"); perr != nil {
				t.Fatalf("Generate wrote a configuration config.Parse rejects: %v\n%s", perr, out)
			}
			return
		}
	}
	if err == nil {
		return
	}
	for _, k := range samplePSKs {
		if strings.Contains(err.Error(), k) {
			t.Fatalf("error shows a pre-shared key: %v", err)
		}
	}
}

func FuzzParseXML(f *testing.F) {
	addSeeds(f, "*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			checkGenerate(t, nil, err)
			return
		}
		checkGenerate(t, []Connection{{Doc: v}}, nil)
	})
}

func FuzzParseGeneric(f *testing.F) {
	addSeeds(f, "aws-samples/*.txt", "import/*.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseGeneric(data)
		if err != nil {
			checkGenerate(t, nil, err)
			return
		}
		checkGenerate(t, []Connection{{Doc: v}}, nil)
	})
}

func FuzzParseDescribe(f *testing.F) {
	addSeeds(f, "aws-samples/*.json", "import/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		conns, err := ParseDescribe(data)
		checkGenerate(t, conns, err)
	})
}

// FuzzRead covers detection: whatever the input, Read says what it is or
// parses it.
func FuzzRead(f *testing.F) {
	addSeeds(f, "*.xml", "aws-samples/*", "import/*")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, conns, err := Read(data)
		if err != nil && !strings.HasPrefix(err.Error(), "awsxml: ") && !strings.HasPrefix(err.Error(), "vpn-") {
			t.Fatalf("error without the package prefix: %v", err)
		}
		checkGenerate(t, conns, err)
	})
}
