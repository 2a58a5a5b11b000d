package testseed

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{{"", Default, true}, {"42", 42, true}, {"18446744073709551615", 1<<64 - 1, true}, {"-1", 0, false}, {"x", 0, false}} {
		got, err := parse(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parse(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
	a, err := parse("random")
	if err != nil || a == 0 {
		t.Errorf("parse(random) = %d, %v", a, err)
	}
}

func TestSeedFromEnv(t *testing.T) {
	t.Setenv(Env, "7")
	if s := Seed(t); s != 7 {
		t.Fatalf("Seed = %d with %s=7", s, Env)
	}
}
