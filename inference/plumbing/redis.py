"""The Redis connection the cluster shares (membership and the pipeline's data plane)."""
import redis


def cluster_redis(redis_url):
    # Short timeouts: a Redis that stops answering must surface as an error, not a hang.
    return redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)
