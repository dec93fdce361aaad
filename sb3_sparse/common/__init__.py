"""Shared DST machinery: masked layers, distributions, topology updates, callbacks, FLOPs."""
