package cli

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/shardmap"
)

// planCmd is `edgecache shardmap plan OLD NEW [--keys FILE | --sample N]`:
// what a shard-map edit costs, computed offline from the two files.
func planCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shardmap plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keysFile := fs.String("keys", "", "file of cache keys, one per line, to count instead of the whole key space")
	sample := fs.Int("sample", 0, "count this many synthetic keys instead of the whole key space")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgecache shardmap plan OLD.yaml NEW.yaml [--keys FILE | --sample N]")
		fs.PrintDefaults()
	}
	// Flags may follow the two files.
	var files []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
		if len(args) > 0 {
			files = append(files, args[0])
			args = args[1:]
		}
	}
	if len(files) != 2 || (*keysFile != "" && *sample > 0) {
		fs.Usage()
		return 2
	}
	var maps [2]*shardmap.Map
	for i, f := range files {
		shards, err := config.LoadShards(f)
		if err != nil {
			for _, e := range flattenErrors(err) {
				fmt.Fprintln(stderr, e)
			}
			return 1
		}
		members := make([]shardmap.Member, len(shards))
		for j, s := range shards {
			members[j] = shardmap.Member{Name: s.Name, Weight: s.Weight}
		}
		if maps[i], err = shardmap.New(members); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			return 1
		}
	}
	p := shardmap.NewPlanner(maps[0], maps[1])
	unit := "of the key space (exact, over 65536 buckets)"
	switch {
	case *keysFile != "":
		f, err := os.Open(*keysFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.AddKey(sc.Bytes())
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		unit = fmt.Sprintf("of %d keys from %s", p.Result().Total, *keysFile)
	case *sample > 0:
		for i := range *sample {
			p.AddKey([]byte("sample:" + strconv.Itoa(i)))
		}
		unit = fmt.Sprintf("of %d sampled keys", *sample)
	default:
		for b := range shardmap.Buckets {
			p.AddBucket(b, 1)
		}
	}
	printPlan(stdout, p.Result(), unit)
	return 0
}

// printPlan writes a plan as a table, in percent of its total.
func printPlan(w io.Writer, p shardmap.PlanResult, unit string) {
	pct := func(n int) string { return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(max(p.Total, 1))) }
	weight := func(n int) string {
		if n == 0 {
			return "-"
		}
		return strconv.Itoa(n)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shard\tweight\tnew weight\tholds\twill hold\tloses\tgains\t")
	for _, r := range p.Shards {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, weight(r.Weight), weight(r.NewWeight),
			pct(r.Before), pct(r.After), pct(r.Lost), pct(r.Gained))
	}
	tw.Flush()
	fmt.Fprintf(w, "moves %s %s\n", pct(p.Moved), unit)
}
