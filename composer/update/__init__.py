"""Delta updates: content-defined chunk stores for images (chunking, index, store, assemble) and binary deltas
between consecutive package versions. See docs/updates/deltas.md."""
