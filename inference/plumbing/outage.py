"""Riding out a Redis outage: a loop that talks to Redis retries with backoff and logs the outage twice, when it
starts and when it ends, instead of once per failed try (a heartbeat every second would flood the log).

Django-free, so that the cluster runtime and the model cache use it too.
"""
import time
from datetime import datetime

FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 5.0


class RedisOutage:
    """The state of one loop's connection: call failed(error) on each failure (it returns how long to wait
    before trying again) and succeeded() after each success."""

    def __init__(self, logger, who):
        self.logger, self.who = logger, who
        self.since = None  # time.time() of the first failure of the current outage, None while Redis answers
        self.failures = 0

    @property
    def ongoing(self):
        return self.since is not None

    def failed(self, error):
        if self.since is None:
            self.since = time.time()
            started = datetime.fromtimestamp(self.since).isoformat(sep=" ", timespec="seconds")
            self.logger.warning("Redis unreachable since %s (%s); the %s retries until it is back", started, error, self.who)
        self.failures += 1
        return min(LONGEST_RETRY_S, FIRST_RETRY_S * 2 ** (self.failures - 1))

    def succeeded(self):
        """Return True when this success ends an outage."""
        if self.since is None:
            return False
        self.logger.warning("Redis back after %.0f s; the %s carries on", time.time() - self.since, self.who)
        self.since, self.failures = None, 0
        return True
