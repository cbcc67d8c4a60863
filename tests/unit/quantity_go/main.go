// Kubernetes' own quantity parser, for tests/unit/test_quantity.py: reads one quantity
// per line and prints, tab-separated, its value in nano units (an integer) and its
// canonical form, or "error" when ParseQuantity refuses it.
package main

import (
	"bufio"
	"fmt"
	"math/big"
	"os"

	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	nano := big.NewInt(1_000_000_000)
	for in.Scan() {
		q, err := resource.ParseQuantity(in.Text())
		if err != nil {
			fmt.Fprintln(out, "error")
			continue
		}
		d := q.AsDec()
		// value * 10^9, exact: the parser rounds every value to a whole number of nanos.
		scaled := new(big.Int).Mul(d.UnscaledBig(), nano)
		for s := d.Scale(); s > 0; s-- {
			scaled.Quo(scaled, big.NewInt(10))
		}
		for s := d.Scale(); s < 0; s++ {
			scaled.Mul(scaled, big.NewInt(10))
		}
		number, suffix := q.CanonicalizeBytes(nil)
		fmt.Fprintf(out, "%s\t%s%s\n", scaled.String(), number, suffix)
	}
}
