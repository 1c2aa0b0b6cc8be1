"""The warm runtime service (docs/warm-runtime.md): the runtime preloaded once, a forked child per node.

- ``service``: the command line (``python -m pipeline_components.runtime.warm serve``): folder check, preload;
- ``server``: the event loop: accept (same-uid peers only), queue, fork, relay each child's exit;
- ``listener``: the socket (0600) and pid file, removed only while still the service's own;
- ``child``: what a forked child does to become a clean ``python -m MODULE ARGS`` process;
- ``freshness``: whether the preloaded project code is still current.

The wire protocol it shares with its client is ``pipeline_components.warm_protocol``.
"""
