"""Background jobs: the runner, the scheduler, the transport between processes, per-key locks.

Generic machinery only; it imports no domain. Domains register what runs on it next to their code:
handlers for named jobs (plain JSON arguments, so a job can cross to another process) and periodic
work (each domain's ``tasks.py``).

- ``runner``: runs jobs in this process, one key's jobs in order, retried while infrastructure is away.
- ``remote``: hands named jobs to a worker process (a child this server starts, or ``caredesk worker``
  through Redis), and the child's side that follows them.
- ``streams``: the Redis Stream and consumer group between the servers and any number of
  ``caredesk worker`` replicas (acknowledged when done, taken over from a dead worker, poison parked).
- ``broker``: the embedded publish/subscribe broker between a server and its child, without Redis.
- ``scheduler``: named periodic work, one piece after another; shared work once across replicas.
- ``locks``: one asyncio lock per key, and one per key across the processes sharing a Redis.
- ``parked``, ``models``, ``admin_api``: parked jobs, for admins.
"""
