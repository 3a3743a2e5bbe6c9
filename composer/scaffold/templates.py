"""The files ``vcomp init`` writes, as templates (package data in code: vcomp is installed by pip, nothing is
read from a checkout). ``string.Template``: ``$name`` is filled in, ``$$`` is a dollar sign."""

from __future__ import annotations

from string import Template

VCOMP_TOML = Template("""\
# vcomp.toml: defaults for the vcomp verbs run in this repository (see docs/project-config.md of vcomp).
# Paths are relative to this file; an option given on the command line always wins.
[project]
profile = "profiles/$name.yaml"
images = "images"
# cache = ".vcomp/cache"            # default: $$VCOMP_CACHE, else ~/.cache/vcomp

[[repositories]]                    # `vcomp search|info|fetch` use the first one (--repo NAME picks another)
name = "upstream"
url = $upstream_toml
root = "trust/upstream-root.json"

[[repositories]]
name = "$name"
url = "repo"
root = "trust/$name-root.json"
""")

PROFILE = Template("""\
# yaml-language-server: $$schema=../schemas/profile.schema.json
# $name: the upstream base system plus this project's own packages (recipes/), from its own signed repository.
name: $name
description: A bootable system with busybox and this project's own hello package.
architectures: [$arches]
repositories:
  - name: upstream
    url: $upstream_yaml
    root: ../trust/upstream-root.json
  - name: $name                     # this project's repository: repo/ (vcomp repo add + publish)
    url: ../repo
    root: ../trust/$name-root.json
    packages: [hello, "$name-*"]    # pinned: these names come only from here, never from upstream
packages:
  - base-files
  - busybox
  - init
  - hello
drivers: [virtio-blk, virtio-scsi, ext4]
kernel:
  package: linux
  cmdline: quiet
init: init
hostname: $name
outputs:
  - type: disk
    options: {format: qcow2, filesystem: ext4}
boot-tests:
  - name: hello
    timeout: 300
    checks:
      hello: hello | grep 'hello from $name'
    expect:
      - "VCOMP-BOOT: init started"
      - "VCOMP-CHECK: PASS 50-hello"
      - "VCOMP-CHECKS: done"
      - "VCOMP-BOOT: ready"
policy:
  allowed-licenses: [GPL-2.0-only, GPL-2.0-or-later, Apache-2.0, MIT, LGPL-2.1-or-later]
""")

RECIPE = Template("""\
# The project's own package: a small C program compiled by the host's compiler for each architecture
# (<triple>-gcc: gcc natively, the cross compiler for the other architecture). Build it with:
#   vcomp pkg build recipes/hello --arch x86_64 --key keys/developer.key --out out/packages
[package]
name = "hello"
version = "1.0.0"
description = "Says hello from $name"
authors = ["$name developers"]
license = "MIT"
type = "application"

[security]
context = "hello_t"

[build]
architectures = [$arches]

[[source]]
kind = "command"
workdir = "src"
tools = ["{triple}-gcc", "as", "ld"]
run = '''
mkdir -p "$$DESTDIR/usr/bin"
"$$CC" -static -O2 -Wall -Werror -DTARGET_ARCH="\\"$$VCOMP_ARCH\\"" -ffile-prefix-map="$$PWD"=. \\
  -o "$$DESTDIR/usr/bin/hello" hello.c
'''
""")

HELLO_C = Template("""\
/* $name's own program: its line is what the boot test of profiles/$name.yaml checks. */
#include <stdio.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    printf("hello from $name: built for %s, running on %s %s\\n", TARGET_ARCH, u.sysname, u.machine);
    return 0;
}
""")

GITIGNORE = Template("""\
# Built here, never committed: the outputs of vcomp build/test, the built packages (vcomp pkg build --out
# out/packages) and a project cache (if vcomp.toml sets one).
/images/
/out/
/.vcomp/
# Private keys stay out of git (the .pub files are committed); the offline root and targets keys are not in
# this tree at all ($offline).
/keys/*.key
# The project's signed package repository: built and signed here with the online keys of keys/, then published
# (vcomp repo serve, or any static web server). Its trust root is committed: trust/$name-root.json.
/repo/
""")

WORKFLOW = Template("""\
# CI for $name: validate the profile on every push and pull request.
# The boot test needs the packages of both repositories: publish repo/ (any static web server), set the url of
# the '$name' repository in profiles/$name.yaml and vcomp.toml to it, then uncomment the last step.
name: vcomp

on:
  push:
    branches: [main]
  pull_request:

permissions:
  contents: read

jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0      # vcomp plan compares with the previous commit
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install vcomp and QEMU
        run: |
          sudo apt-get update && sudo apt-get install -y qemu-system-x86 gcc
          pip install veridian-composer
      - name: Validate
        run: vcomp validate
      # - name: Lock check, build and boot test
      #   run: vcomp lock --check && vcomp test --arch x86_64
""")

README = Template("""\
# $name

A Veridian OS: [profiles/$name.yaml](profiles/$name.yaml) is the upstream base system plus this project's own
packages ([recipes/](recipes/)), which it takes from its own signed repository `repo/`.

| path | what |
|---|---|
| `vcomp.toml` | defaults for vcomp here: the profile, the images directory, the repositories |
| `profiles/$name.yaml` | the system: packages, kernel, outputs, boot tests (`vcomp lock` writes `$name.lock`) |
| `recipes/hello/` | the example package: a C program, built for each architecture |
| `repo/` | this project's signed package repository (not committed: publish it) |
| `trust/` | the pinned trust roots of both repositories |
| `keys/` | the developer key and the repository's online keys (`*.key` not committed) |

The offline root and targets keys of `repo/` are in `$offline`: keep them offline; they are needed again
only to delegate new package names (`vcomp repo delegate`) or rotate keys.

## Build and boot

```sh
$commands
```

`vcomp test` builds `images/$name/` and boots it in QEMU; the boot test checks that `hello` says
`hello from $name`. Change `recipes/hello/src/hello.c`, bump the version in `recipes/hello/recipe.toml`, and
run the same commands with `vcomp lock --update hello`.
""")
