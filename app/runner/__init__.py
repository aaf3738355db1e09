"""The job runner, in parts that each do one job, held together by the queue.

``queue`` (the door: submit, cancel, retry, count, consume) holds ``unstaged`` (one handler
per job), ``stages`` (staged jobs, stage by stage) and ``reaper`` (dead workers' work taken
back). They run in a ``running`` context under ``leases``, say they live through
``heartbeat``, keep records in ``jobs`` (the contract) and ``stores`` (Memory, SQLite,
Redis), and tell what happens through ``events``. ``app.services`` builds and wires them.
This module imports none of them, so a part never imports its package back.
"""
