"""A tiny object-store interface (save/load/stat/list/remove) and its backends; no format knowledge."""
