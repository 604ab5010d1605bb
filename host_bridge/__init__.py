"""The daemon (`vinpaint serve`) and its Python client: jobs over ZeroMQ with protocol/SPEC.md, kept on disk.

Modules: `client` (Client, for scripts and `vinpaint submit`), `daemon` (the ROUTER loop), `store` (the job
folders), `worker` (the training process), `auth` (loopback or CurveZMQ), `settings` (wire settings -> engine
config and job id), `config` (the typed settings). Nothing is imported here, so the training process starts light.
"""
