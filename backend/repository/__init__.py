"""The repository format: content-addressed, compressed, encrypted items in packs, snapshots last."""
