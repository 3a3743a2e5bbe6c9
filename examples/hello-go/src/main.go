// hello-go: built with the SDK's Go (Debian's go, GOARCH from the SDK); cgo calls zlib from the sysroot.
package main

/*
#cgo LDFLAGS: -lz
#include <zlib.h>
*/
import "C"

import (
	"fmt"
	"runtime"
)

// Go's architecture names as the image names them.
var arches = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "riscv64": "riscv64"}

func main() {
	arch, ok := arches[runtime.GOARCH]
	if !ok {
		arch = runtime.GOARCH
	}
	fmt.Printf("hello-go: Go on %s with zlib %s (%s, cgo)\n", arch, C.GoString(C.zlibVersion()), runtime.Version())
}
