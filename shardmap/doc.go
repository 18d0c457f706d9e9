// Package shardmap maps a cache key to the Valkey shard that owns it.
//
// A Map places keys in two steps. The key's 64-bit xxHash picks one of
// Buckets (65536) buckets; a table built by New gives the bucket's owner.
// New fills the table by weighted rendezvous hashing (highest random
// weight): every member draws a pseudo-random u in (0,1) for every bucket,
// seeded by the member's name, and the bucket goes to the member with the
// highest score -weight/ln(u). Ties, as rare as two equal 53-bit draws,
// go to the greater name.
//
// # Invariants
//
//   - Placement depends on the members' names and weights only: not on
//     their order, not on their addresses. Every process on every machine
//     that builds a Map from the same members places every key alike (the
//     hash is unseeded; a test pins it). With equal weights the scores are
//     compared as integers, exactly. Unequal weights need math.Log, which
//     may differ in the last bit between architectures: a bucket whose two
//     best scores agree to 15 digits could go either way, odds of about
//     1e-11 per Map.
//   - Adding a member moves only the buckets the new member wins, and each
//     moved bucket goes to it; removing one moves only its buckets. Other
//     members never trade keys.
//   - A member owns weight/Σweights of the buckets on average; with equal
//     weights each member's share is off 1/N by about √(N/65536) relative
//     (1.6% at 16 members, 4% at 100), the cost of fixed-size buckets.
//   - Pick and PickString allocate nothing and cost one hash of the key
//     (about 16 ns for a 60-byte key) and one load, whatever the number of
//     members.
//
// # Sets, reloads and rebalancing
//
// A Set is a Map with the Shards it places keys on: one generation's
// topology. Build makes the next Set from the previous one, reusing every
// shard whose Spec and Options did not change, with its connections and
// L1. Shards are held by reference count, as caddy's UsagePool counts the
// users of a pooled value: each Set holds one reference to each of its
// shards, Release gives them up, and a shard closes once none is left and
// its in-flight calls have finished.
//
// When placement changed, the new Set reads the previous owner of a key
// its owner misses for BuildOptions.Window and copies the value over
// (Get); Owners and Reach give deletes and tag purges the previous owners
// too. The new Set holds a reference to each of the previous Set's shards
// for that window, so a removed shard stays open while it is read and
// closes when the window ends.
//
// # Why rendezvous over a bucket table
//
// Rendezvous hashing moves the minimum: when one member joins N others, the
// keys that move are exactly those the newcomer wins, 1/(N+1) of them on
// average, here at the granularity of a bucket. Computing it per key costs
// one hash per member, O(N) on every lookup; computing it once per bucket
// when the map is built makes Pick O(1) and independent of N, the way
// Valkey Cluster's 16384 slots make key-to-node a table lookup. Weights
// come for free in the score, with shares exactly proportional to them.
//
// A hash ring needs hundreds of virtual nodes per member to hold each
// member within a few percent of its share, and a lookup is a binary
// search over all of them, O(log(N·vnodes)). Maglev hashing fills a table
// in O(1) lookups too, but a change of members also moves some keys between
// members that stayed, beyond the 1/(N+1) minimum.
//
// The price is New: O(Buckets × members), a few milliseconds for tens of
// members, paid once per configuration change and off the request path.
package shardmap
