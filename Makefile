# The two commands of the quickstart: `make demo` and `make test`. Each does its own set-up.
.PHONY: setup demo test unit integration lint bench clean docs conformance reliability debian-fixture test-archive bench-scale \
	bench-archive test-archive-e2e test-reach test-boot-matrix test-drivers test-systemd test-server \
	test-verified-boot test-device test-ab-update test-sdk test-debug test-debug-kernel test-site test-dib \
	bench-farm

# Suites that run only when asked for by their own target (minutes each; tests/conftest.py OPT_IN skips them
# in any other run).
NOT_OPT_IN = not archive and not boot_matrix and not drivers and not systemd and not server and not verified_boot \
	and not device and not ab_update and not sdk and not debug and not site and not dib

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	.venv/bin/python -m pytest -n 2 -m "$(NOT_OPT_IN)" tests

# profiles/server.yaml (the imported Debian closure) built and booted on aarch64 and riscv64 (x86_64 is in
# `make test`): tests/integration/test_boot_server.py, timings printed.
test-server: setup
	.venv/bin/python -m pytest -n 2 -m server -s tests/integration/test_boot_server.py

# vpk on the device (docs/updates/vpk-on-device.md): the server profile booted on x86_64 with its repositories
# served over HTTP on 127.0.0.1:8480; inside it vpk install nano, rollback, verify leave / as it was, and a
# tampered package or an unreachable repository is one clear error (tests/integration/test_vpk_device.py).
test-device: setup
	.venv/bin/python -m pytest -m device -v -s tests/integration/test_vpk_device.py

# A/B image updates (docs/updates/ab-slots.md): profiles/device.yaml built as generations 1, 2 and 3, released to
# a served repository; the device boots generation 1, updates itself to 2 and commits it, tries 3 (whose health
# check fails) and falls back to 2 on its own, all in one QEMU run that reboots (tests/integration/test_ab_update.py).
test-ab-update: setup
	.venv/bin/python -m pytest -m ab_update -v -s tests/integration/test_ab_update.py

# The SDK (docs/sdk.md): vcomp sdk build twice (same bytes), then examples/hello-cmake and hello-meson built
# with the server profile's SDK (and examples/hello-python by the python source kind), installed into it and run
# at boot on x86_64, aarch64 and riscv64; docs/tutorial-sdk.md run as written (tests/integration/test_tutorial_sdk.py).
test-sdk: setup
	.venv/bin/python -m pytest -m sdk -s tests/integration/test_sdk.py tests/integration/test_tutorial_sdk.py

# Debugging (docs/debugging.md): a guest's core dump opened with symbols from vcomp debuginfod, gdb-multiarch on
# the guest kernel through QEMU's gdb stub (tests/integration/test_debug.py).
test-debug: setup
	.venv/bin/python -m pytest -m debug -s tests/integration/test_debug.py

# ... and the guest kernel's function names through QEMU's gdb stub, with the vmlinux of Debian's
# linux-image-RELEASE-dbg (fetched once: about 1 GB download, 360 MB kept in the cache).
test-debug-kernel: setup
	VCOMP_TEST_KERNEL_DBG=1 .venv/bin/python -m pytest -m debug -s tests/integration/test_debug.py

# The repository web site in a real browser (docs/site.md): the sample repository served with an access log, its
# site built by vcomp repo site and served on 127.0.0.1, every page rendered by headless Chromium (Debian's
# chromium, installed by setup with VCOMP_SETUP_BROWSER=1), the search finding a package, screenshots kept in
# $$VCOMP_SITE_SHOTS when set (tests/integration/test_site.py; the link crawl is in `make test` too).
test-site:
	@VCOMP_SETUP_BROWSER=1 bash scripts/setup.sh
	.venv/bin/python -m pytest -m site -s tests/integration/test_site.py

# diskimage-builder (docs/dib.md): profiles/dib.yaml's qcow2 and vmdk written by DIB (the [dib] extra; root and
# loop devices, no device-mapper needed), both booted in QEMU, and a second build compared byte for byte
# (tests/integration/test_dib.py).
test-dib: setup
	.venv/bin/python -m pytest -m dib -s tests/integration/test_dib.py

unit: setup
	.venv/bin/python -m pytest -n 2 -m "$(NOT_OPT_IN)" tests/unit

integration: setup
	.venv/bin/python -m pytest -m "$(NOT_OPT_IN)" tests/integration

# init: systemd (Debian's systemd imported with its closure, PID 1 in an initramfs) booted on x86_64, aarch64 and
# riscv64 (tests/integration/test_boot_systemd.py; the import is a minute of CPU per architecture).
# The verified boot chain (docs/verified-boot.md): profiles/verified.yaml booted with Secure Boot enforced, and a UKI
# with one byte changed, a UKI the firmware's key did not sign, a root with one byte changed refused (4 boots).
test-verified-boot: setup
	.venv/bin/python -m pytest -v -s -m 'verified_boot or integration' tests/integration/test_verified_boot.py

test-systemd: setup
	.venv/bin/python -m pytest -m systemd -v tests/integration/test_boot_systemd.py

# Images you can reach (docs/reach.md): host-side HTTP and ssh checks against booted guests, dropbear imported
# from Debian (about 1 min; part of `make test` too).
test-reach: setup
	.venv/bin/python -m pytest -s tests/integration/test_boot_reach.py

# Every cell of the boot matrix (docs/boot-tests.md): profiles/minimal.yaml built once for x86_64, aarch64 and
# riscv64, then `vcomp test` boots every cell (ARCH/OUTPUT/MEDIUM/FIRMWARE) and prints the table; its JUnit is
# images/boot-matrix/junit.xml (VCOMP_BOOT_MATRIX_OUT=DIR to change). Not part of `make test` (minutes of QEMU).
test-boot-matrix: setup
	VCOMP_BOOT_MATRIX_OUT=$${VCOMP_BOOT_MATRIX_OUT:-images/boot-matrix} .venv/bin/python -m pytest -s -m boot_matrix \
		tests/integration/test_boot_matrix.py
# The driver families booted with their virtual hardware on aarch64 and riscv64 (docs/drivers.md; x86_64 is in
# `make test`): the sample repository, the drivers profile built per architecture, one boot each (~2-4 min).
test-drivers: setup
	.venv/bin/python -m pytest -m drivers -s tests/integration/test_drivers.py

# The public TUF conformance suite against vcomp's TUF client (not part of `make test`).
conformance: setup
	bash scripts/conformance.sh

# The long kill sweeps (RELIABILITY_FULL=1: ten times the kill points of `make test`) and their table.
reliability: setup
	RELIABILITY_FULL=1 .venv/bin/python -m pytest -n 2 tests/reliability
	.venv/bin/python bench/reliability.py --kills 40

# Regenerate tests/data/debian-bookworm-amd64/ (the trimmed bookworm fixture and apt's answers; network).
debian-fixture: setup
	.venv/bin/python scripts/debian_fixture.py

# The API documentation of the Python library (pdoc, reStructuredText docstrings) in build/api/ (open
# build/api/index.html); the plugin interface is composer/plugins/api.py (docs/plugins.md). tests/unit/test_api_docs.py
# renders composer.plugins in `make test` and fails on a warning or a broken reference.
docs: setup
	rm -rf build/api
	.venv/bin/python -m pdoc --docformat restructuredtext --output-directory build/api composer

bench: setup
	.venv/bin/python bench/package.py

# The sample set built serially, on 1 and on 2 Dask workers (docs/farm.md): wall times and the speed-up.
bench-farm: setup
	.venv/bin/python bench/farm.py --workers 2

# The scale simulation at 10k, 100k and 1M packages (issue 20; docs/repo-scale.md): hours the first time (the
# synthetic repositories are then cached under $$VCOMP_CACHE/bench-scale); not part of `make test`.
bench-scale: setup
	.venv/bin/python bench/scale.py --sizes 10000,100000,1000000 --mirror-max 100000

clean:
	rm -rf images out .vcomp-cache

# The real Debian archive (network, apt on the whole suite, minutes; not part of `make test`): apt's answers on
# the fixture, the importer on the whole suite, and our resolver against apt on bookworm + -updates + -security
# (tests/archive/test_apt_agreement.py prints the table). The product path has its own target (below).
test-archive: setup
	.venv/bin/python -m pytest -m archive -s tests --deselect tests/archive/test_archive_e2e.py

# The real archive through the product (~15 min: `vcomp import debian --all --metadata-only` of the three suites,
# then `vcomp lock` per request against apt; tests/archive/test_archive_e2e.py). Reuse an imported repository with
# VCOMP_E2E_PREPARED=DIR [VCOMP_E2E_PACKAGES=FILE] (see the test's docstring).
test-archive-e2e: setup
	.venv/bin/python -m pytest -m archive -s tests/archive/test_archive_e2e.py

# Resolution on the real archive against raw libsolv and apt in the same run (bench/README.md, `resolve.py`).
bench-archive: setup
	.venv/bin/python bench/resolve.py --archive
