"""The job domain: the job model, its metadata schema, rollouts and the queue.

Nothing here prints or exits; everything raises ``ant.errors`` exceptions.
"""
