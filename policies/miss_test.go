package policies

import (
	"reflect"
	"testing"
)

func TestDefaultMiss(t *testing.T) {
	if got := (DefaultMiss{}).OnMiss(&Request{Method: "GET"}); !reflect.DeepEqual(got, MissAction{}) {
		t.Errorf("OnMiss = %+v, want the zero MissAction", got)
	}
}
