"""Background jobs: the runner, the scheduler, the transport between processes, per-key locks.

Generic machinery only; it imports no domain. Domains register what runs on it next to their code:
handlers for named jobs (plain JSON arguments, so a job can cross to another process) and periodic
work (each domain's ``tasks.py``).

- ``runner``: runs jobs in this process, one key's jobs in order, retried while infrastructure is away.
- ``remote``: hands named jobs to a worker process (a child this server starts, or ``caredesk worker``
  through Redis), and the worker's side that follows them.
- ``broker``: the embedded publish/subscribe broker between a server and its child, without Redis.
- ``scheduler``: named periodic work, one piece after another.
- ``locks``: one asyncio lock per key.
"""
