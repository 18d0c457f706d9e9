package policies

// DefaultMiss is the built-in Miss policy: it returns the zero MissAction,
// which fetches from the route's origin and stores as the TTL policy
// decides.
type DefaultMiss struct{}

var _ Miss = DefaultMiss{}

// OnMiss implements Miss.
func (DefaultMiss) OnMiss(*Request) MissAction { return MissAction{} }
