"""SDKs per profile and architecture (issue 18): sysroot, cross toolchain, build-system files, manifest."""
