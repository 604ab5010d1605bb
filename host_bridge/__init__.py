"""The daemon (`vinpaint serve`) and its Python client: jobs over ZeroMQ with protocol/SPEC.md, kept on disk.

Modules: `client` (Client, for scripts and `vinpaint submit`), `daemon` (start, serve, close: the ROUTER loop),
`handlers` (one method per request type, given the request's context), `pool` (the training processes, one per
device, and the jobs' training states), `events` (what a training process reports), `worker` (the training
process), `store` (the job folders), `auth` (loopback or CurveZMQ), `job_settings` (wire settings -> engine config,
job id and memory estimate), `daemon_config` (the daemon's and the client's typed settings), `logs`. Nothing is
imported here, so the client and the training process start light.
"""
