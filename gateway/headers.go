package gateway

import (
	"strconv"
	"time"
)

// Pre-built header values: the hit path assigns these slices under
// canonical keys instead of calling Header().Set, which allocates.
var (
	csHitL1  = []string{"edgecache; hit; detail=l1"}
	csHitL2  = []string{"edgecache; hit; detail=l2"}
	csHitFB  = []string{"edgecache; hit; detail=fallback"}
	csBypass = []string{"edgecache; fwd=bypass"}

	csStale           = []string{"edgecache; hit; detail=stale"}
	csStaleRevalidate = []string{"edgecache; hit; detail=stale-while-revalidate"}
	csStaleIfError    = []string{"edgecache; hit; detail=stale-if-error"}
	csOnlyIfCached    = []string{"edgecache; fwd=miss; detail=only-if-cached"}
	ageZero           = []string{"0"}
)

const (
	hdrAge           = "Age"
	hdrCacheStatus   = "Cache-Status"
	hdrContentLength = "Content-Length"
)

// maxPrebuiltAge is the largest Age with a pre-built value.
const maxPrebuiltAge = 3600

var ageValues = func() [][]string {
	v := make([][]string, maxPrebuiltAge+1)
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// ageValue returns the Age header value for age, allocating only above an
// hour.
func ageValue(age time.Duration) []string {
	s := int64(age / time.Second)
	if s <= 0 {
		return ageZero
	}
	if s <= maxPrebuiltAge {
		return ageValues[s]
	}
	return []string{strconv.FormatInt(s, 10)}
}

// missStatus is the Cache-Status of a response that went to the origin.
func missStatus(fwd string, stored bool, detail string) []string {
	s := "edgecache; fwd=" + fwd
	if stored {
		s += "; stored"
	}
	if detail != "" {
		s += "; detail=" + detail
	}
	return []string{s}
}

func hitStatus(t tier) []string {
	switch t {
	case tierL1:
		return csHitL1
	case tierFallback:
		return csHitFB
	}
	return csHitL2
}
