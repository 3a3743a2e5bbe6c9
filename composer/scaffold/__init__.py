"""``vcomp init``: a new OS repository (profile, own package, own signed repository, keys, CI, git)."""
