"""The warm runtime service (docs/warm-runtime.md): the runtime preloaded once, a forked child per node."""
