"""vcomp's caches: verified entries written atomically, one registry of kinds, LRU eviction.

``store``: the directory-entry store every directory-shaped cache uses (files + a record of their
digests, written under a per-entry lock to a temporary name, fsynced, renamed; read back with every
file hashed while it is copied). ``images``: the image-output kind. ``policy``: pure eviction
choices and size parsing. ``registry``: the tuple of kinds ``vcomp cache`` walks. ``ops``: verify,
gc and the automatic size cap over the registry.
"""
