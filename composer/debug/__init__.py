"""Debugging built images: a debuginfod server for a repository's packages, core dumps, boot timelines.

docs/debugging.md says how the parts fit: :mod:`.protocol` (the debuginfod URL grammar and lookups, pure),
:mod:`.buildid` (an ELF file's GNU build-id), :mod:`.index` (build-id -> file, from a verified repository),
:mod:`.server` (HTTP), :mod:`.timeline` (a boot's console log -> a timeline, pure).
"""
